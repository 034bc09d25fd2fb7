"""Load a whole-model state dict (a training checkpoint's ``state_dict``) so that nothing fails silently:
weights of another architecture are refused (unless ``strict=False``), and the keys that did not match
are logged in one table at WARNING level."""
from __future__ import annotations

import re
from typing import Dict, List, Mapping

from torch import Tensor, nn

from svitt_mm.utils.load_report import KeyReport, log_key_report

from .architecture_check import check_architecture

# PyTorch's message for a skipped tensor of another shape (the rest of the load goes on).
_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) '
                            r'from checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)')
# What DistributedDataParallel adds to every key of a model saved while wrapped.
WRAPPER_PREFIX = 'module.'


def _shape(text: str) -> tuple:
    return tuple(int(size) for size in text.strip('[]').split(',') if size.strip())


def load_state_dict_checked(model: nn.Module, state: Mapping[str, Tensor], source: str,
                            strict: bool = True, owner: str = 'model') -> KeyReport:
    """Copy ``state`` into ``model`` and report what did not match.

    The model's own load hooks run as in ``model.load_state_dict`` (e.g. relative-position tables of
    another frame count are resized, a QA decoder is initialised from the fusion layers). Tensors whose
    shapes differ are skipped instead of aborting the load.

    Args:
        state: the model's state dict (a ``module.`` prefix of every key is removed).
        source: names the weights in messages (e.g. the checkpoint path).
        strict: refuse weights built for another architecture
            (:class:`~svitt_mm.models.architecture_check.ArchitectureMismatchError`, naming the first
            setting that differs); ``False`` loads what fits.
        owner: names the model in messages.

    Returns:
        The :class:`~svitt_mm.utils.load_report.KeyReport`, also logged at WARNING level when not empty.
    """
    if state and all(key.startswith(WRAPPER_PREFIX) for key in state):
        state = {key[len(WRAPPER_PREFIX):]: value for key, value in state.items()}
    if strict:
        check_architecture(state, model, source, owner)
    metadata: Dict[str, dict] = getattr(state, '_metadata', None) or {}
    state = dict(state)  # the model's load hooks may amend it
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []

    def load(module: nn.Module, prefix: str) -> None:
        module._load_from_state_dict(state, prefix, metadata.get(prefix[:-1], {}), True, missing,
                                     unexpected, errors)
        for name, child in module._modules.items():
            if child is not None:
                load(child, prefix + name + '.')

    load(model, '')
    report = KeyReport(missing=missing, unexpected=unexpected)
    for error in errors:
        match = _SIZE_MISMATCH.search(error)
        if match is None:
            raise RuntimeError(f'{source}: cannot load into the {owner}: {error}')
        report.mismatched.append((match.group(1), _shape(match.group(2)), _shape(match.group(3))))
    log_key_report(report, owner, source)
    return report
