"""What the fused kernels (``cpu_kernel``, ``triton``) read besides ``q, k, v``, their mask gradient, and the
Triton kernels' query tile.

Where the gather backend copies every query block's keys and values, a fused kernel reads them in place
through the layout's int32 key table (:func:`~..block_layout.key_tables`, ``-1`` where nothing is read), and
an additive local mask only when there is something for it to add.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from ..base import PairBias
from ..block_layout import BlockLayout, KeyTables
from ..logits import local_logit_mask


def kernel_local_mask(q: Tensor, num_global: int, layout: BlockLayout, tables: KeyTables,
                      key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Optional[Tensor]:
    """The additive local mask when there is bias or key padding; ``None`` otherwise (the kernel table's
    ``-1`` entries already mark what is not read)."""
    if bias is None and key_padding_mask is None:
        return None
    return local_logit_mask(q, num_global, layout, tables.index, tables.valid, key_padding_mask, bias)


def mask_gradient(grad_pairs: Tensor, mask: Tensor) -> Tensor:
    """Gradient of the additive local mask ``[B or 1, H or 1, M, bs or 1, C]`` from a kernel's per-pair
    logit gradient ``[B, H, M, bs, C]``: summed over the mask's broadcast dimensions."""
    return grad_pairs.sum_to_size(mask.shape).to(mask.dtype)


def query_tile(block_size: int) -> int:
    """Query rows per Triton kernel program: the block rounded up to a power of two (at least 16, at most 64)."""
    return min(64, max(16, 1 << (block_size - 1).bit_length()))
