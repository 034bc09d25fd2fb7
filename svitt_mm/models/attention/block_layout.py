"""Block layout of block-sparse attention (edge sparsity): which local key blocks each local query block sees.

The ``N`` local (non-global) tokens are cut, in their current order, into ``M = ceil(N / block_size)``
blocks; block ``m`` covers local tokens ``[m * block_size, min((m + 1) * block_size, N))`` (the last one
may be ragged).  Query block ``m`` sees the key blocks its row of the table lists; a
:class:`~.block_pattern.BlockPattern` says which (the window + random draw of
:class:`~.local_random_blocks.LocalRandomBlocks` is computed here).  The layout is shared by the whole batch
and all heads.

Everything here is pure index arithmetic on small ``[M, ...]`` tables, built on the target device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor


@dataclass(frozen=True)
class BlockLayout:
    """Which key blocks each query block attends to.

    Attributes:
        block_index: LongTensor ``[M, S]``: the key blocks of query block ``m`` in ascending order, ``-1``
            (unused slot) after them. When ``is_dense`` it lists every block in every row.
        block_size: tokens per block.
        num_tokens: number of local tokens ``N`` the layout was made for.
        is_dense: the pattern covers (nearly) every pair, so the operator runs dense attention.
    """

    block_index: Tensor
    block_size: int
    num_tokens: int
    is_dense: bool

    @property
    def num_blocks(self) -> int:
        return self.block_index.shape[0]


def num_blocks(num_tokens: int, block_size: int) -> int:
    """Number of blocks ``ceil(num_tokens / block_size)``."""
    return -(-num_tokens // block_size)


def num_slots(num_blocks: int, local_blocks: int, random_blocks: int) -> int:
    """Columns of the block table: the most key blocks any query block gets, ``min(L + R, M)``.

    The middle rows hold the largest window (``min(L, M)`` blocks) and can take ``R`` random blocks on top
    as long as blocks remain.
    """
    return min(local_blocks + random_blocks, num_blocks)


def computed_pair_fraction(num_tokens: int, block_size: int, slots: int) -> float:
    """Local query-key pairs the block path computes (padded slots included), relative to ``N * N``."""
    if num_tokens == 0:
        return 1.0
    padded = num_blocks(num_tokens, block_size) * block_size
    return padded * slots * block_size / (num_tokens * num_tokens)


def window_mask(num_blocks: int, local_blocks: int, device: Optional[torch.device] = None) -> Tensor:
    """Bool ``[M, M]``: ``True`` where key block ``j`` lies in the window of ``L`` blocks centred on ``m``."""
    index = torch.arange(num_blocks, device=device)
    half = (local_blocks - 1) // 2  # -1 for L = 0: empty window
    return (index[:, None] - index[None, :]).abs() <= half


def random_slots(num_blocks: int, local_blocks: int, random_blocks: int) -> int:
    """Random blocks drawn per row: ``R``, capped by the free blocks of the end rows (smallest window)."""
    smallest_window = min((local_blocks + 1) // 2, num_blocks)
    return min(random_blocks, num_blocks - smallest_window)


def draw_random_blocks(in_window: Tensor, count: int,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw ``count`` blocks per row uniformly without replacement from outside the window.

    Args:
        in_window: bool ``[M, M]`` from :func:`window_mask`.
        count: blocks per row (:func:`random_slots`).
        generator: random source (torch's global RNG when ``None``), on ``in_window``'s device.

    Returns:
        LongTensor ``[M, count]``; ``-1`` where a row has fewer than ``count`` free blocks.
    """
    scores = torch.rand(in_window.shape, generator=generator, device=in_window.device)
    scores = scores.masked_fill(in_window, float('-inf'))
    values, index = scores.topk(count, dim=1)
    return index.masked_fill(values == float('-inf'), -1)


def sort_block_rows(block_index: Tensor, num_slots: int) -> Tensor:
    """Sort each row ascending with the ``-1`` slots last; keep the first ``num_slots`` columns."""
    num_blocks = block_index.shape[0]
    unused = block_index < 0
    ordered = block_index.masked_fill(unused, num_blocks).sort(dim=1).values[:, :num_slots]
    return ordered.masked_fill(ordered == num_blocks, -1)


def sparse_block_index(num_blocks: int, local_blocks: int, random_blocks: int,
                       device: Optional[torch.device] = None,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """Block table ``[M, min(L + R, M)]`` of window + random key blocks per query block (``-1`` = unused)."""
    in_window = window_mask(num_blocks, local_blocks, device)
    window = torch.where(in_window, torch.arange(num_blocks, device=device), -1)  # [M, M]
    random = draw_random_blocks(in_window, random_slots(num_blocks, local_blocks, random_blocks), generator)
    return sort_block_rows(torch.cat([window, random], dim=1),
                           num_slots(num_blocks, local_blocks, random_blocks))


def dense_block_index(num_blocks: int, device: Optional[torch.device] = None) -> Tensor:
    """Block table ``[M, M]`` listing every block in every row."""
    return torch.arange(num_blocks, device=device).expand(num_blocks, num_blocks)


def block_adjacency(block_index: Tensor) -> Tensor:
    """Bool ``[M, M]``: ``True`` where query block ``m`` attends to key block ``j``."""
    num_blocks = block_index.shape[0]
    adjacency = torch.zeros(num_blocks, num_blocks + 1, dtype=torch.bool, device=block_index.device)
    column = block_index.masked_fill(block_index < 0, num_blocks)  # unused slots land in a spare column
    adjacency.scatter_(1, column, True)
    return adjacency[:, :num_blocks]


def block_table(block_index: Tensor, width: Optional[int] = None) -> Tensor:
    """A pattern's key blocks per query block (``[M, any]``, ``-1`` unused, any order, repeats allowed) as a
    layout's table: each row ascending, every block once, ``-1`` after them.

    Args:
        width: columns to keep, at least the fullest row; ``None``: the fullest row (read on the host).
    """
    num_blocks = block_index.shape[0]
    adjacency = block_adjacency(block_index)
    if width is None:
        width = int(adjacency.sum(dim=1).max()) if num_blocks else 0
    ordered = torch.where(adjacency, torch.arange(num_blocks, device=block_index.device), num_blocks)
    ordered = ordered.sort(dim=1).values[:, :width]
    return ordered.masked_fill(ordered == num_blocks, -1)


def query_token_index(layout: BlockLayout, num_global: int) -> Tensor:
    """Sequence positions ``[M, block_size]`` of the queries of each block (ragged tail clamped to the last).

    Positions count the ``num_global`` global tokens first, so local token ``i`` sits at
    ``num_global + i``.
    """
    size = layout.block_size
    local = torch.arange(layout.num_blocks * size, device=layout.block_index.device)
    local = local.clamp(max=max(layout.num_tokens - 1, 0))
    return (num_global + local).view(layout.num_blocks, size)


def key_token_index(layout: BlockLayout, num_global: int) -> Tuple[Tensor, Tensor]:
    """Sequence positions of the keys each query block sees, global keys first.

    Returns:
        ``(index, valid)``, both ``[M, C]`` with ``C = num_global + S * block_size``: ``index`` holds the
        key positions (``0`` at invalid slots so it can be gathered safely), ``valid`` is ``False`` for
        the unused slots and the padding of a ragged last block.
    """
    block_index = layout.block_index
    device = block_index.device
    size = layout.block_size
    offsets = torch.arange(size, device=device)
    local = block_index[:, :, None] * size + offsets  # [M, S, bs]
    valid = (block_index[:, :, None] >= 0) & (local < layout.num_tokens)
    local = torch.where(valid, local + num_global, 0).flatten(1)
    glob = torch.arange(num_global, device=device).expand(layout.num_blocks, num_global)
    index = torch.cat([glob, local], dim=1)
    valid = torch.cat([torch.ones_like(glob, dtype=torch.bool), valid.flatten(1)], dim=1)
    return index, valid


class KeyTables(NamedTuple):
    """A layout's key tables: :func:`key_token_index`'s ``index`` and ``valid`` ``[M, C]`` (what the additive
    mask is built from), and ``kernel`` (int32, ``-1`` where nothing is read), the table fused kernels
    read keys and values through."""

    index: Tensor
    valid: Tensor
    kernel: Tensor


def key_tables(layout: BlockLayout, num_global: int) -> KeyTables:
    """The :class:`KeyTables` of ``layout`` with ``num_global`` global tokens."""
    index, valid = key_token_index(layout, num_global)
    return KeyTables(index, valid, torch.where(valid, index, -1).to(torch.int32).contiguous())
