"""Dense softmax attention: every query sees every (non-padding) key."""
from __future__ import annotations

from typing import Optional, Tuple

import torch.nn.functional as F
from torch import Tensor

from svitt_mm.registry import ATTENTION_OPS

from .base import AttentionOp, PairBias
from .logits import row_logit_mask, softmax_rows


@ATTENTION_OPS.register_module()
class DenseAttention(AttentionOp):
    """Full attention through PyTorch's ``scaled_dot_product_attention``.

    The global queries' probabilities are recomputed explicitly (``num_global x N`` logits), which is
    negligible next to the ``N x N`` attention itself.
    """

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_global: int = 1, layout=None,
                key_padding_mask: Optional[Tensor] = None,
                bias: Optional[PairBias] = None) -> Tuple[Tensor, Tensor]:
        mask = row_logit_mask(q.shape[-2], q.shape[-2], key_padding_mask, bias, q.dtype, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        probs = softmax_rows(q[:, :, :num_global], k, None if mask is None else mask[:, :, :num_global])
        return out, probs
