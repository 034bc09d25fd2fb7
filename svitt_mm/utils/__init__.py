from .cost import count_flops, median_seconds
from .preflight import MissingInputError, check_required_inputs
from .resources import resolve_path
from .safe_resume import register_safe_checkpoint_globals
from .setup_env import register_all_modules

__all__ = ['count_flops', 'median_seconds', 'MissingInputError', 'check_required_inputs', 'resolve_path',
           'register_safe_checkpoint_globals', 'register_all_modules']
