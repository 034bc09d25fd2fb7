"""3-D relative position bias of the video BEiT (BEiT's 2-D bias with a temporal axis).

One learnable table per layer, ``[(2*max_frames-1)*(2Hp-1)*(2Wp-1) + 3, num_heads]``.  For a query
patch at ``(t, h, w)`` and a key patch at ``(t', h', w')`` the row is, time outermost, query minus key::

    (dt + max_frames-1) * (2Hp-1)*(2Wp-1) + (h-h' + Hp-1) * (2Wp-1) + (w-w' + Wp-1),
    dt = clamp(t - t', -(max_frames-1), max_frames-1)

Temporal offsets beyond the table (clips longer than ``max_frames`` at inference) are clamped to the
largest offset the table holds.  The last three rows are the [CLS] rows, as in BEiT:
``S`` = [CLS] query -> patch key, ``S+1`` = patch query -> [CLS] key, ``S+2`` = [CLS] -> [CLS]
(``S`` = number of patch-pair rows).

Row indices are computed arithmetically from the tokens' original (raster) positions, so they stay exact
for any token order and after pruning, and nothing besides the tables is stored.
:class:`RelativePositionIndex` holds the per-token bookkeeping of one sequence (computed once and shared
by all layers until the sequence changes); :meth:`RelativePositionBias3D.bind` turns one layer's table
and that bookkeeping into the :class:`~svitt_mm.models.attention.base.PairBias` an attention operator
takes.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from svitt_mm.models.attention.base import BiasTable
from svitt_mm.utils.arg_checks import ArgumentError

from .temporal_bias_resize import resize_temporal_bias, table_frames


def num_relative_positions(max_frames: int, frame_grid: Tuple[int, int]) -> int:
    """Number of patch-pair rows ``(2*max_frames-1)*(2Hp-1)*(2Wp-1)`` of a table (without [CLS] rows)."""
    return (2 * max_frames - 1) * (2 * frame_grid[0] - 1) * (2 * frame_grid[1] - 1)


class RelativePositionIndex:
    """Table rows for (query, key) pairs of one token sequence, [CLS] first.

    Args:
        positions: ``LongTensor[P, N]`` (``P`` = batch size or 1) original raster positions
            ``t*Hp*Wp + h*Wp + w`` of the local tokens in their current order.
        frame_grid: ``(Hp, Wp)`` patches per frame.
        max_frames: temporal extent of the tables.
    """

    def __init__(self, positions: Tensor, frame_grid: Tuple[int, int], max_frames: int) -> None:
        height, width = frame_grid
        self.positions = positions  # [P, N] original positions of the local tokens
        self.frame_grid = frame_grid
        self.max_frames = max_frames
        self.num_positions = num_relative_positions(max_frames, frame_grid)
        self.frame_stride = (2 * height - 1) * (2 * width - 1)
        self.space_offset = (height - 1) * (2 * width - 1) + (width - 1)
        t, rest = positions.div(height * width, rounding_mode='floor'), positions % (height * width)
        h, w = rest.div(width, rounding_mode='floor'), rest % width
        cls = positions.new_zeros(positions.shape[0], 1)
        self.time = torch.cat([cls, t], dim=1)  # [P, 1+N]
        self.space = torch.cat([cls, h * (2 * width - 1) + w], dim=1)  # [P, 1+N], linear in (h, w)
        self.is_cls = torch.cat([cls + 1, torch.zeros_like(positions)], dim=1)  # [P, 1+N] 0/1

    def __call__(self, q_index: Tensor, k_index: Tensor, sample: Optional[Tensor] = None) -> Tensor:
        """Rows ``LongTensor[P, *S]`` for sequence indices ``q_index``, ``k_index`` broadcasting to ``S``;
        with ``sample`` (the batch index, e.g. flex's ``b`` in a ``score_mod``), the rows ``[*S]`` of that
        sample only."""
        def at(values: Tensor, index: Tensor) -> Tensor:
            if sample is None:
                return values[:, index]
            return values[sample if values.shape[0] > 1 else 0, index]

        limit = self.max_frames - 1
        dt = (at(self.time, q_index) - at(self.time, k_index)).clamp(-limit, limit) + limit
        rows = dt * self.frame_stride + (at(self.space, q_index) - at(self.space, k_index)) + self.space_offset
        # 1: [CLS] query, 2: [CLS] key, 3: both -> rows S, S+1, S+2.
        cls_code = at(self.is_cls, q_index) + 2 * at(self.is_cls, k_index)
        return torch.where(cls_code > 0, self.num_positions - 1 + cls_code, rows)


class TableBias:
    """:class:`~svitt_mm.models.attention.base.PairBias` reading one layer's table.

    ``bias(q_index, k_index)`` -> ``[P, H, *S]`` in the table's dtype.
    """

    def __init__(self, table: Tensor, index: RelativePositionIndex) -> None:
        self.table = table
        self.index = index

    def __call__(self, q_index: Tensor, k_index: Tensor) -> Tensor:
        return self.table[self.index(q_index, k_index)].movedim(-1, 1)

    def as_table(self) -> BiasTable:
        """The table and its row arithmetic, for operators that read the table inside their kernel."""
        return BiasTable(self.table, self.index)


class RelativePositionBias3D(nn.Module):
    """One layer's learnable 3-D relative position bias table (zero-initialised by default).

    A zero table, like one inflated from 2-D BEiT weights, gives the same bias to the temporal offsets
    ``dt`` and ``-dt``: the encoder starts exactly symmetric in time. ``temporal_init_std > 0`` draws
    the rows of every nonzero temporal offset from ``N(0, temporal_init_std^2)`` instead
    (:meth:`init_temporal_slices`), a start that is not symmetric in time.

    Args:
        num_heads: attention heads (table columns).
        max_frames: largest temporal extent the table distinguishes.
        frame_grid: ``(Hp, Wp)`` patches per frame.
        temporal_init_std: standard deviation of the random start of the ``dt != 0`` rows (0: zeros).
    """

    def __init__(self, num_heads: int, max_frames: int, frame_grid: Tuple[int, int],
                 temporal_init_std: float = 0.0) -> None:
        super().__init__()
        if max_frames < 1:
            raise ArgumentError(f'RelativePositionBias3D: max_frames must be >= 1, got {max_frames!r}')
        self.max_frames = max_frames
        self.frame_grid = tuple(frame_grid)
        rows = num_relative_positions(max_frames, self.frame_grid) + 3
        self.table = nn.Parameter(torch.zeros(rows, num_heads))
        self.init_temporal_slices(temporal_init_std)

    @torch.no_grad()
    def init_temporal_slices(self, std: float) -> None:
        """Add ``N(0, std^2)`` draws to the rows of every temporal offset ``dt != 0``; the ``dt = 0``
        slice (the 2-D bias) and the [CLS] rows are left as they are. ``std = 0`` changes nothing (and
        draws nothing)."""
        if not std >= 0:
            raise ArgumentError(f'RelativePositionBias3D: temporal_init_std must be >= 0, got {std!r}')
        if std == 0 or self.max_frames == 1:
            return
        stride = num_relative_positions(1, self.frame_grid)
        noise = torch.randn(num_relative_positions(self.max_frames, self.frame_grid), self.table.shape[1])
        centre = (self.max_frames - 1) * stride  # first row of dt = 0
        noise[centre:centre + stride] = 0
        self.table[:noise.shape[0]] += std * noise.to(self.table)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load as usual, after resizing a table made for another frame count to ``max_frames``
        (:func:`~.temporal_bias_resize.resize_temporal_bias`), so that a checkpoint trained at ``T``
        frames loads into a ``T'``-frame model (``load_from``, ``tools/test.py``, resume)."""
        key = prefix + 'table'
        table = state_dict.get(key)
        if table is not None and table.dim() == 2 and table.shape[1] == self.table.shape[1]:
            source = table_frames(table.shape[0], self.frame_grid)
            if source is not None and source != self.max_frames:
                state_dict[key] = resize_temporal_bias(table, source, self.max_frames)
                print_log(f'{key}: relative position bias table resized from {source} to '
                          f'{self.max_frames} frames (symmetric linear interpolation in time)',
                          logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def bind(self, index: RelativePositionIndex, dtype: torch.dtype) -> TableBias:
        """The pair bias of this layer for the sequence described by ``index``, in ``dtype``."""
        return TableBias(self.table.to(dtype), index)

    def extra_repr(self) -> str:
        return f'max_frames={self.max_frames}, frame_grid={self.frame_grid}, heads={self.table.shape[1]}'
