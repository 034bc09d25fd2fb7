"""Resize the temporal axis of a 3-D relative position bias table to another frame count.

A table of a ``T``-frame model (:mod:`.relative_position_bias`) holds, time outermost, ``2T-1`` blocks of
``S = (2Hp-1)(2Wp-1)`` spatial rows, one block per temporal offset ``dt = -(T-1) .. T-1``, then the 3
[CLS] rows.  Resizing it to ``T'`` frames gives offset ``dt'`` the bias of the source at

    x = dt' * T / T'    (clamped to [-(T-1), T-1])

**Why ``T / T'``**: :class:`~svitt_mm.datasets.transforms.SampleFrames` spreads the ``T`` frames of a clip
over the whole video (one frame per equal segment), so neighbouring frames are ``L / T`` apart and ``dt'``
frames of a ``T'``-frame clip span the time of ``dt' * T / T'`` frames of a ``T``-frame clip: 4 -> 8
frames stretches the table x2, as SViTT's curriculum does.  Scaling by ``(T-1)/(T'-1)`` instead would map
the outermost offsets onto each other but shift every other offset in time.  The outermost
``T'/T - 1`` destination offsets fall beyond the source's largest offset and take its bias, as the
model's own lookup does for clips longer than its table.

``x`` is interpolated between the neighbouring integer source offsets (``'linear'``) or rounded half
away from zero (``'nearest'``); both depend on ``|dt'|`` only, mirrored for negative offsets, so
``dt'`` and ``-dt'`` use the same weights (SViTT's floor-nearest resize maps +1 to 0 but -1 to -1).
A 1-frame (2-D) source is tiled over every offset; ``T == T'`` is the identity, and resizing up by an
integer factor and back down recovers the table exactly.  The [CLS] rows are copied.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

NUM_CLS_ROWS = 3


def _linear(x: float) -> Dict[int, float]:
    low = math.floor(x)
    frac = x - low
    return {low: 1.0 - frac, low + 1: frac} if frac > 0 else {low: 1.0}


def _nearest(x: float) -> Dict[int, float]:
    return {math.floor(x + 0.5): 1.0}  # x >= 0 here: half rounds up, i.e. away from zero


RESIZE_MODES: Dict[str, Callable[[float], Dict[int, float]]] = {'linear': _linear, 'nearest': _nearest}


def temporal_resize_weights(src_frames: int, dst_frames: int, mode: str = 'linear') -> Tensor:
    """Interpolation weights ``[2*dst_frames-1, 2*src_frames-1]`` (float64) between temporal offsets.

    Row ``dt' + dst_frames-1`` holds the weights of the source offsets ``dt + src_frames-1`` that make
    destination offset ``dt'`` (see the module docstring); every row sums to 1, and
    ``W[c' + d, c + s] == W[c' - d, c - s]`` (``c, c'`` = the zero offsets).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f'resize_temporal_bias: mode must be one of {sorted(RESIZE_MODES)}, got {mode!r}')
    for name, frames in (('src_frames', src_frames), ('dst_frames', dst_frames)):
        if not isinstance(frames, int) or frames < 1:
            raise ValueError(f'resize_temporal_bias: {name} must be an int >= 1, got {frames!r}')
    weights = torch.zeros(2 * dst_frames - 1, 2 * src_frames - 1, dtype=torch.float64)
    for offset in range(dst_frames):
        x = min(offset * src_frames / dst_frames, src_frames - 1)
        for source, weight in RESIZE_MODES[mode](x).items():
            weights[dst_frames - 1 + offset, src_frames - 1 + source] += weight
            if offset:
                weights[dst_frames - 1 - offset, src_frames - 1 - source] += weight
    return weights


def table_frames(num_rows: int, frame_grid: Tuple[int, int]) -> Optional[int]:
    """Frame count ``T`` of a table with ``num_rows = (2T-1)(2Hp-1)(2Wp-1) + 3`` rows, else ``None``."""
    spatial = (2 * frame_grid[0] - 1) * (2 * frame_grid[1] - 1)
    blocks, rest = divmod(num_rows - NUM_CLS_ROWS, spatial)
    if rest or blocks < 1 or blocks % 2 == 0:
        return None
    return (blocks + 1) // 2


def resize_temporal_bias(table: Tensor, src_frames: int, dst_frames: int, mode: str = 'linear') -> Tensor:
    """Resize a ``src_frames`` bias table to ``dst_frames`` frames (see the module docstring).

    Args:
        table: ``[(2*src_frames-1)*S + 3, H]``, time outermost, the 3 [CLS] rows last.
        src_frames: frame count the table was made for (1 = a 2-D BEiT table).
        dst_frames: frame count of the result.
        mode: ``'linear'`` or ``'nearest'``.

    Returns:
        ``[(2*dst_frames-1)*S + 3, H]`` in ``table``'s dtype and device.
    """
    weights = temporal_resize_weights(src_frames, dst_frames, mode)
    offsets = 2 * src_frames - 1
    spatial, rest = divmod(table.shape[0] - NUM_CLS_ROWS, offsets)
    if table.dim() != 2 or rest or spatial < 1:
        raise ValueError(f'resize_temporal_bias: a {src_frames}-frame table needs ({offsets} * S + '
                         f'{NUM_CLS_ROWS}) rows [rows, heads]; got shape {tuple(table.shape)}')
    if src_frames == dst_frames:
        return table.clone()
    patch = table[:-NUM_CLS_ROWS].reshape(offsets, spatial * table.shape[1])
    resized = (weights.to(table.device) @ patch.double()).to(table.dtype)
    return torch.cat([resized.reshape(-1, table.shape[1]), table[-NUM_CLS_ROWS:]])
