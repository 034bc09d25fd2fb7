"""Additive logit masks and explicit softmax rows, shared by the dense operator and every block backend.

Masks are added to the scaled logits ``q k^T / sqrt(D)``: the pair bias where there is one, ``-inf`` where a
key must get no attention (padding keys, unused slots of a block table, the padding of a ragged block).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .base import PairBias
from .block_layout import BlockLayout, query_token_index


def key_padding_logits(key_padding_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive mask ``[B, 1, 1, N]``: ``-inf`` at padding keys (bool ``[B, N]``, ``True``), ``0`` elsewhere."""
    logits = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return logits.masked_fill(key_padding_mask, float('-inf'))[:, None, None, :]


def row_logit_mask(num_rows: int, num_tokens: int, key_padding_mask: Optional[Tensor],
                   bias: Optional[PairBias], dtype: torch.dtype, device: torch.device) -> Optional[Tensor]:
    """Additive mask ``[B or 1, H or 1, num_rows, N]`` of the first ``num_rows`` queries over all ``N`` keys:
    the pair bias (called with ``[rows, 1] x [1, N]`` positions) and ``-inf`` at padding keys; ``None`` when
    there is neither. ``num_rows = N`` is dense attention's mask, ``num_global`` the global queries'."""
    mask = None
    if bias is not None and num_rows:
        index = torch.arange(num_tokens, device=device)
        mask = bias(index[:num_rows, None], index[None, :]).to(dtype)
    if key_padding_mask is not None:
        padding = key_padding_logits(key_padding_mask, dtype)
        mask = padding if mask is None else mask + padding
    return mask


def softmax_rows(q_rows: Tensor, k: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Attention probabilities ``[..., R, N]`` of a few explicit query rows ``[..., R, D]`` over the keys
    ``[..., N, D]``, with an optional additive ``mask`` (e.g. from :func:`row_logit_mask`)."""
    logits = q_rows @ k.transpose(-1, -2) / math.sqrt(q_rows.shape[-1])
    if mask is not None:
        logits = logits + mask
    return logits.softmax(dim=-1)


def local_logit_mask(q: Tensor, num_global: int, layout: BlockLayout, key_index: Tensor, key_valid: Tensor,
                     key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tensor:
    """Additive mask ``[B or 1, H or 1, M, bs or 1, C]`` of the local queries' computed pairs.

    Column ``c`` of block ``m`` is the key ``key_index[m, c]``, from :func:`~.block_layout.key_token_index`
    with its ``key_valid`` (``C = num_global + S * bs``, global keys first). The mask is ``-inf`` on unused
    slots, the padding of a ragged last block and padding keys, and holds the pair bias, called with the
    query positions ``[M, bs, 1]`` and the key positions ``[M, 1, C]``.
    """
    mask = torch.zeros(key_valid.shape, dtype=q.dtype, device=q.device)
    mask = mask.masked_fill(~key_valid, float('-inf'))[None, None, :, None, :]
    if key_padding_mask is not None:
        mask = mask.masked_fill(key_padding_mask[:, key_index][:, None, :, None, :], float('-inf'))
    if bias is not None:
        query_index = query_token_index(layout, num_global)
        mask = mask + bias(query_index[:, :, None], key_index[:, None, :]).to(q.dtype)
    return mask
