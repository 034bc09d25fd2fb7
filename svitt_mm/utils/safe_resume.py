"""Let MMEngine resume from its own checkpoints under torch's safe loading (``weights_only=True``).

MMEngine 0.10.7 checkpoints hold its ``HistoryBuffer`` message-hub state and numpy scalars/arrays. With
torch >= 2.6 ``torch.load`` refuses them unless those types are allow-listed. We allow-list exactly the
types such checkpoints contain; the pickled reference to ``getattr`` (used for HistoryBuffer's statistic
methods) is answered by a stand-in that only hands out those four methods, so safe loading stays safe.
"""
from __future__ import annotations

import builtins

import numpy as np
from numpy._core import multiarray
import torch
from mmengine.logging import HistoryBuffer

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to HistoryBuffer's statistic methods."""
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise TypeError(f'refusing to resolve {obj!r}.{name} while loading a checkpoint')


_history_buffer_getattr.__module__ = builtins.__name__
_history_buffer_getattr.__name__ = 'getattr'
_history_buffer_getattr.__qualname__ = 'getattr'


def register_safe_checkpoint_globals() -> None:
    """Allow-list the non-tensor types found in MMEngine checkpoints for ``torch.load``."""
    numpy_types = [np.ndarray, np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType,
                   np.dtypes.Int64DType, multiarray._reconstruct, multiarray.scalar]
    torch.serialization.add_safe_globals([HistoryBuffer, _history_buffer_getattr, *numpy_types])
