"""The bottom layer of svitt_mm: helpers every other layer may use (paths to files inside installed
packages, safe weight loading, checkpoint allow-lists, text helpers). Nothing here imports another
svitt_mm package except :mod:`svitt_mm.registry`."""
from .resources import resolve_path
from .safe_load import UnsafeCheckpointError, check_shapes, load_weights_file
from .safe_resume import register_safe_checkpoint_globals

__all__ = ['resolve_path', 'UnsafeCheckpointError', 'check_shapes', 'load_weights_file',
           'register_safe_checkpoint_globals']
