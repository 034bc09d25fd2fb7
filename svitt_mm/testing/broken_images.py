"""Write real broken image files to test how image datasets handle them.

Kinds (:data:`BROKEN_IMAGE_KINDS`, every one must make :func:`~svitt_mm.datasets.transforms.read_image`
raise ``ImageDecodeError``): ``missing`` (nothing is written), ``empty`` (0 bytes), ``truncated`` (a valid
PNG cut in half) and ``garbage`` (random bytes).
"""
from __future__ import annotations

import os

import numpy as np

# Missing, empty and random-byte files are broken whatever the medium.
from .broken_videos import _write_empty, _write_garbage, _write_missing

BROKEN_IMAGE_KINDS = ('missing', 'empty', 'truncated', 'garbage')


def write_image(path: str, level: int = 100, size: int = 8) -> str:
    """Write a uniformly gray ``size`` x ``size`` image (format from the suffix) to ``path``."""
    import mmcv

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    mmcv.imwrite(np.full((size, size, 3), level, np.uint8), path)
    return path


def _write_truncated(path: str) -> None:
    png = write_image(path + '.png', size=32)
    with open(png, 'rb') as f:
        data = f.read()
    os.remove(png)
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


_WRITERS = {'missing': _write_missing, 'empty': _write_empty, 'truncated': _write_truncated,
            'garbage': _write_garbage}


def write_broken_image(path: str, kind: str) -> str:
    """Make ``path`` a broken image of ``kind`` (one of :data:`BROKEN_IMAGE_KINDS`); returns ``path``."""
    if kind not in _WRITERS:
        raise ValueError(f'write_broken_image: kind must be one of {BROKEN_IMAGE_KINDS}, got {kind!r}')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _WRITERS[kind](path)
    return path
