"""Dense softmax attention: every query sees every (non-padding) key."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from svitt_mm.registry import ATTENTION_OPS

from .base import AttentionOp, PairBias


def key_padding_logits(key_padding_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive mask ``[B, 1, 1, N]``: ``-inf`` at padding keys (bool ``[B, N]``, ``True``), ``0`` elsewhere."""
    logits = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return logits.masked_fill(key_padding_mask, float('-inf'))[:, None, None, :]


def dense_logit_mask(num_tokens: int, batch_size: int, key_padding_mask: Optional[Tensor],
                     bias: Optional[PairBias], dtype: torch.dtype,
                     device: torch.device) -> Optional[Tensor]:
    """Additive mask ``[B or 1, H or 1, N, N]`` combining the pair bias and key padding (``-inf``)."""
    mask = None
    if bias is not None:
        index = torch.arange(num_tokens, device=device)
        mask = bias(index[:, None], index[None, :]).to(dtype)
    if key_padding_mask is not None:
        pad = key_padding_logits(key_padding_mask, dtype)
        mask = pad if mask is None else mask + pad
    return mask


@ATTENTION_OPS.register_module()
class DenseAttention(AttentionOp):
    """Full attention through PyTorch's ``scaled_dot_product_attention``.

    The global queries' probabilities are recomputed explicitly (``num_global x N`` logits), which is
    negligible next to the ``N x N`` attention itself.
    """

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_global: int = 1, layout=None,
                key_padding_mask: Optional[Tensor] = None,
                bias: Optional[PairBias] = None) -> Tuple[Tensor, Tensor]:
        num_tokens = q.shape[-2]
        mask = dense_logit_mask(num_tokens, q.shape[0], key_padding_mask, bias, q.dtype, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        logits = q[:, :, :num_global] @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            logits = logits + mask[:, :, :num_global]
        return out, logits.softmax(dim=-1)
