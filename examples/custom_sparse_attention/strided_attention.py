"""A custom sparse attention operator, registered into svitt_mm from outside the package.

``StridedBlockAttention`` is a fixed, dilated block pattern (the strided pattern of Child et al., 2019, at
block granularity, both directions): local query block ``m`` attends to the global tokens, to a window of
``local_blocks`` blocks centred on itself, and to every block ``j`` with ``(j - m) % stride == 0``.

It reuses :class:`~svitt_mm.models.attention.BlockSparseAttention` for everything (input checks, the
train/eval layout switch, the gather-based block attention, the dense fallback) and only overrides
:meth:`make_layout`, i.e. how the block table is built.
"""
from __future__ import annotations

from typing import Optional

import torch

from svitt_mm.models.attention.block_layout import (BlockLayout, computed_pair_fraction, dense_block_index,
                                                    num_blocks, sort_block_rows, window_mask)
from svitt_mm.models.attention.block_sparse import BlockSparseAttention
from svitt_mm.registry import ATTENTION_OPS


@ATTENTION_OPS.register_module()
class StridedBlockAttention(BlockSparseAttention):
    """Global tokens + local window + every ``stride``-th block (a deterministic pattern).

    Args:
        block_size: local tokens per block.
        stride: query block ``m`` sees the key blocks ``m, m +- stride, m +- 2 * stride, ...``.
        local_blocks: window of blocks centred on each query block (0 or odd); the stride pattern
            already contains the query's own block.
        dense_threshold: see :class:`BlockSparseAttention`: run dense attention when the block path would
            compute at least this fraction of the local pairs.
    """

    def __init__(self, block_size: int = 56, stride: int = 4, local_blocks: int = 1,
                 dense_threshold: float = 0.35) -> None:
        super().__init__(block_size=block_size, local_blocks=local_blocks, random_blocks=0,
                         dense_threshold=dense_threshold)
        if not isinstance(stride, int) or stride < 2:
            raise ValueError(f'StridedBlockAttention: stride must be an int >= 2, got {stride!r}')
        self.stride = stride

    def extra_repr(self) -> str:
        return (f'block_size={self.block_size}, stride={self.stride}, local_blocks={self.local_blocks}, '
                f'dense_threshold={self.dense_threshold}')

    def make_layout(self, num_local_tokens: int, device: Optional[torch.device] = None,
                    generator: Optional[torch.Generator] = None) -> BlockLayout:
        """Block table ``[M, S]`` of the pattern for ``num_local_tokens`` local tokens.

        The pattern is fixed, so ``generator`` is unused (train and eval layouts are the same).
        """
        count = num_blocks(num_local_tokens, self.block_size)
        block = torch.arange(count, device=device)
        allowed = window_mask(count, self.local_blocks, device)  # [M, M]
        allowed |= (block[:, None] - block[None, :]) % self.stride == 0
        slots = max(allowed.sum(dim=1).tolist(), default=0)
        if computed_pair_fraction(num_local_tokens, self.block_size, slots) >= self.dense_threshold:
            return BlockLayout(dense_block_index(count, device), self.block_size, num_local_tokens, True)
        table = sort_block_rows(torch.where(allowed, block, -1), slots)  # ascending, -1 = unused slot
        return BlockLayout(table, self.block_size, num_local_tokens, False)
