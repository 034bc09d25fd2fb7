"""The gather backend: PyTorch ops only, so any device and dtype, gradients, ``torch.compile`` and FLOP counts.

Global queries attend densely to every key; local query block ``m`` attends to the global keys and to the key
blocks its layout row lists. The keys and values of every query block are gathered with one token-index table
(the same table gives the bias positions), and all blocks of all heads go through one
``scaled_dot_product_attention`` call, so time and memory grow with the kept pairs.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..base import PairBias
from ..block_layout import BlockLayout, KeyTables
from ..logits import local_logit_mask, row_logit_mask, softmax_rows
from .base import AttentionBackend


def global_attention(q: Tensor, k: Tensor, v: Tensor, num_global: int, key_padding_mask: Optional[Tensor],
                     bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
    """Dense attention of the global queries over all keys: ``(out [B, H, G, D], probs [B, H, G, N])``."""
    mask = row_logit_mask(num_global, q.shape[-2], key_padding_mask, bias, q.dtype, q.device)
    probs = softmax_rows(q[:, :, :num_global], k, mask)
    return probs @ v, probs


def gathered_block_attention(q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                             key_index: Tensor, mask: Tensor) -> Tensor:
    """Local-query outputs ``[B, H, N - G, D]`` under a :func:`~..logits.local_logit_mask`, by gathering each
    query block's keys and values (positions ``key_index [M, C]``) and running all blocks of all heads
    through one SDPA call."""
    batch, heads, _, dim = q.shape
    blocks, size = layout.num_blocks, layout.block_size
    width = key_index.shape[1]
    flat = key_index.flatten()
    keys = k.index_select(2, flat).view(batch, heads * blocks, width, dim)
    values = v.index_select(2, flat).view(batch, heads * blocks, width, dim)
    queries = F.pad(q[:, :, num_global:], (0, 0, 0, blocks * size - layout.num_tokens))
    queries = queries.reshape(batch, heads * blocks, size, dim)
    mask = mask.expand(-1, heads, -1, -1, -1).reshape(mask.shape[0], heads * blocks, mask.shape[3], width)
    out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
    return out.reshape(batch, heads, blocks * size, dim)[:, :, :layout.num_tokens]


class GatherBackend(AttentionBackend):
    """Gathered key/value blocks through one SDPA call (see the module docstring)."""

    name = 'gather'

    def attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout, tables: KeyTables,
                  key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        out_global, probs = global_attention(q, k, v, num_global, key_padding_mask, bias)
        mask = local_logit_mask(q, num_global, layout, tables.index, tables.valid, key_padding_mask, bias)
        out_local = gathered_block_attention(q, k, v, num_global, layout, tables.index, mask)
        return torch.cat([out_global, out_local], dim=2), probs
