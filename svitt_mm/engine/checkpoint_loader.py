"""MMEngine reads local checkpoints (``load_from``, ``--resume``, ``tools/test.py``) through
:func:`load_local_checkpoint`, registered here over MMEngine's own local loader: ``torch.load`` with
``weights_only=True`` passed explicitly (an environment variable such as ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
cannot turn it off), safetensors files too, and one-line errors naming the file for an unsafe pickle (with
the refused global and a safe way to convert), a truncated file or a file that is no checkpoint.

MMEngine's own checkpoints hold a few non-tensor types; ``register_safe_checkpoint_globals`` (called by
``svitt_mm.apis.register_all_modules``) allow-lists exactly those.
"""
from __future__ import annotations

from typing import Any

from mmengine.runner import CheckpointLoader

from svitt_mm.utils.safe_load import load_weights_file


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location: Any = None) -> Any:
    """The content of the local checkpoint ``filename`` (see the module docstring)."""
    return load_weights_file(filename, 'checkpoint', map_location=map_location or 'cpu')
