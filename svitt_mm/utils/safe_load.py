"""Read weights from outside safely, and report shape mismatches key by key.

Files from elsewhere (Hugging Face, timm, SViTT checkpoints) are read with ``safetensors`` or
``torch.load(weights_only=True)``, which never runs code stored in the file. A pickle that needs more than
tensors and plain containers is refused with :class:`UnsafeCheckpointError`, which says how to convert a
trusted file instead of switching safe loading off.
"""
from __future__ import annotations

import os
import pickle
import re
from typing import Any, Iterable, List, Sequence, Tuple

import torch

from svitt_mm.utils.errors import InputFileError, MissingFileError, UserError

PICKLE_SUFFIXES = ('.pth', '.pt', '.bin', '.ckpt')
WEIGHT_SUFFIXES = ('.safetensors',) + PICKLE_SUFFIXES
# the line of torch's refusal that names what was refused (the rest advises weights_only=False)
_UNPICKLER_REASON = re.compile(r'WeightsUnpickler error:\s*([^\n]+)|^(Trying to load unsupported GLOBAL [^\n]+)'
                               r'|^(Unsupported global: [^\n]+)', re.M)
# what torch says of a cut-off zip checkpoint, or of a file that is no checkpoint at all
_NOT_A_CHECKPOINT = re.compile(r'PytorchStreamReader|central directory|Ran out of input|invalid load key|'
                               r'unexpected EOF|HeaderTooSmall|InvalidHeader|MetadataIncompleteBuffer')


class UnsafeCheckpointError(UserError, ValueError):
    """A pickled checkpoint holds objects that safe loading refuses (it could run code when loaded)."""


def _refusal(path: str, what: str, error: Exception) -> UnsafeCheckpointError:
    match = _UNPICKLER_REASON.search(str(error))
    reason = (next(group for group in match.groups() if group) if match else str(error).splitlines()[0]).strip()
    reason = reason if len(reason) <= 160 else reason[:157] + '...'
    return UnsafeCheckpointError(
        f'{path}: refusing to load {what}: the file holds pickled Python objects that torch\'s safe loader '
        f'does not allow ({reason}); unpickling them could run arbitrary code. If you trust where the file '
        f'comes from, save its tensors as safetensors in a separate, trusted Python session, e.g. '
        f'`python -c "import torch; from safetensors.torch import save_file; c = torch.load(\'{path}\', '
        f'weights_only=False); save_file(c.get(\'model\', c), \'weights.safetensors\')"`, and use '
        f'weights.safetensors instead.')


def _is_pickle_or_zip(path: str) -> bool:
    """Whether ``path`` starts as ``torch.save`` files do: a zip archive, or a pickle (protocol >= 2)."""
    with open(path, 'rb') as f:
        head = f.read(4)
    return head.startswith(b'PK\x03\x04') or head[:1] == b'\x80'


def load_weights_file(path: str, what: str = 'weights', map_location: Any = 'cpu') -> Any:
    """The content of a ``.safetensors`` file (a dict of tensors) or of a pickled torch file read with
    ``torch.load(weights_only=True)`` (passed explicitly, so that no environment variable such as
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` can turn safe loading off), on ``map_location``.

    Raises:
        MissingFileError: ``path`` does not exist.
        UnsafeCheckpointError: the pickle needs objects safe loading refuses (e.g. it would run code); the
            message names the file and the refused global.
        InputFileError: unsupported suffix, or a truncated or otherwise unreadable file; the message names
            the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f'{what} not found: {path}')
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise InputFileError(f'{path}: unsupported {what} file type {suffix!r} (expected one of '
                         f'{", ".join(WEIGHT_SUFFIXES)})')
    try:
        if suffix == '.safetensors':
            from safetensors.torch import load_file
            return load_file(path, device=str(map_location) if isinstance(map_location, (str, torch.device))
                             else 'cpu')
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if _is_pickle_or_zip(path):  # a refused class, function or opcode: unpickling could run code
            raise _refusal(path, what, error) from None
        raise InputFileError(f'{path}: cannot read {what}: it is not a PyTorch checkpoint (neither a zip '
                             f'archive nor a pickle)') from None
    except Exception as error:  # report the file, not a deep unpickling traceback
        first_line = str(error).splitlines()[0] if str(error) else ''
        hint = (' - the file is truncated (an interrupted copy or download?) or is not a PyTorch checkpoint'
                if _NOT_A_CHECKPOINT.search(str(error)) else '')
        raise InputFileError(f'{path}: cannot read {what} ({type(error).__name__}: {first_line}){hint}'
                             ) from error


def check_shapes(pairs: Iterable[Tuple[str, Sequence[int], Sequence[int]]], owner: str) -> None:
    """Raise ``ValueError`` listing every ``(name, checkpoint shape, model shape)`` whose shapes differ,
    one line per key, before anything is copied."""
    mismatched: List[str] = [f'  {name}: checkpoint {tuple(theirs)} vs model {tuple(ours)}'
                             for name, theirs, ours in pairs if tuple(theirs) != tuple(ours)]
    if mismatched:
        raise ValueError(f'{owner}: {len(mismatched)} weight(s) have the wrong shape:\n'
                         + '\n'.join(mismatched))
