"""Proportional attention (ToMe, Bolya et al. 2023): a token that stands for ``s`` merged tokens gets the
attention those ``s`` identical tokens would get together.

Softmax over keys with ``log s_j`` added to the logit of key ``j``: ``exp(l_j + log s_j) = s_j exp(l_j)``, the
weight ``s_j`` copies of key ``j`` would have. The term enters through the
:class:`~svitt_mm.models.attention.base.PairBias` path, so every attention operator and backend adds it for
exactly the pairs it computes.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..attention.base import PairBias


class ProportionalAttentionBias:
    """:class:`~svitt_mm.models.attention.base.PairBias`: ``inner(q, k) + log(sizes[k])``.

    Args:
        sizes: ``[B, N]`` sizes of the tokens of the current sequence (global tokens included; >= 1).
        inner: the pair bias it adds to (e.g. the relative position bias), or ``None``.
    """

    def __init__(self, sizes: Tensor, inner: Optional[PairBias] = None) -> None:
        self.log_sizes = sizes.log()
        self.inner = inner

    def __call__(self, q_index: Tensor, k_index: Tensor) -> Tensor:
        shape = torch.broadcast_shapes(q_index.shape, k_index.shape)
        k_index = k_index.reshape((1,) * (len(shape) - k_index.dim()) + tuple(k_index.shape))
        size_term = self.log_sizes[:, k_index][:, None]  # [B, 1, *k_index.shape], broadcasts to [B, 1, *S]
        if self.inner is None:
            return size_term.expand(-1, -1, *shape)
        inner = self.inner(q_index, k_index)
        return inner + size_term.to(inner.dtype)
