"""Base of the block-sparse operators whose fused kernels read keys and values in place.

Where :class:`~.block_sparse.BlockSparseAttention` gathers every query block's keys and values into one
tensor, a fused kernel reads them through the layout's int32 key table
(:func:`~.block_layout.key_tables`). This class keeps that table (cached for the evaluation layouts) and
builds the additive local mask only when there is something for it to add.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

from torch import Tensor

from .base import PairBias
from .block_layout import BlockLayout, KeyTables, key_tables
from .block_sparse import BlockSparseAttention, local_attention_mask


def mask_gradient(grad_pairs: Tensor, mask: Tensor) -> Tensor:
    """Gradient of the additive local mask ``[B or 1, H or 1, M, bs or 1, C]`` from a kernel's per-pair
    logit gradient ``[B, H, M, bs, C]``: summed over the mask's broadcast dimensions."""
    return grad_pairs.sum_to_size(mask.shape).to(mask.dtype)


class KernelBlockSparseAttention(BlockSparseAttention):
    """:class:`BlockSparseAttention` with the key tables and local inputs of a fused kernel.

    Args:
        **kwargs: the arguments of :class:`BlockSparseAttention`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._eval_key_tables: Dict[tuple, Tuple[BlockLayout, KeyTables]] = {}

    def key_tables(self, layout: BlockLayout, num_global: int) -> KeyTables:
        """:func:`~.block_layout.key_tables` of ``layout``; built once for the cached evaluation layouts."""
        if not any(layout is cached for cached in self._eval_layouts.values()):
            return key_tables(layout, num_global)
        key = (id(layout), num_global)
        if key not in self._eval_key_tables:
            self._eval_key_tables[key] = (layout, key_tables(layout, num_global))
        return self._eval_key_tables[key][1]

    def local_inputs(self, q: Tensor, num_global: int, layout: BlockLayout, key_padding_mask: Optional[Tensor],
                     bias: Optional[PairBias]) -> Tuple[Tensor, Optional[Tensor]]:
        """The kernel's key table, and the additive local mask when there is bias or key padding (``None``
        otherwise: the table's ``-1`` entries already mark what is not read)."""
        tables = self.key_tables(layout, num_global)
        if bias is None and key_padding_mask is None:
            return tables.kernel, None
        return tables.kernel, local_attention_mask(q, num_global, layout, tables.index, tables.valid,
                                                   key_padding_mask, bias)
