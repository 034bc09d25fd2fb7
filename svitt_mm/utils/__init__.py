from .config_check import ConfigCheckError, check_config
from .cost import count_flops, median_seconds
from .distributed import DistributedSetupError, finish_distributed, setup_distributed, use_strategy
from .json_output import write_json
from .preflight import MissingInputError, check_required_inputs
from .resources import resolve_path
from .safe_resume import register_safe_checkpoint_globals
from .setup_env import register_all_modules

__all__ = ['ConfigCheckError', 'check_config', 'count_flops', 'median_seconds', 'DistributedSetupError', 'finish_distributed', 'setup_distributed', 'use_strategy',
           'MissingInputError', 'check_required_inputs', 'resolve_path',
           'register_safe_checkpoint_globals', 'register_all_modules', 'write_json']
