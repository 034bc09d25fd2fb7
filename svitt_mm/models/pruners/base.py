"""Token pruners (node sparsity): choose which local tokens survive a pruning step."""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from svitt_mm.utils.arg_checks import check_arguments, number_in


class TokenReduction(NamedTuple):
    """What a token reducer (:meth:`TokenPruner.reduce`) makes of a ``[B, 1+N, C]`` sequence, [CLS] first.

    * ``tokens``: ``[B, 1+K, C]``, [CLS] first, then the ``K`` local tokens left, in token order.
    * ``positions``: ``LongTensor[B, K]`` raster positions ``t*Hp*Wp + h*Wp + w`` of the local tokens left
      (for the relative position bias and the block assignment).
    * ``sizes``: ``[B, 1+K]`` how many original tokens each token stands for, or ``None`` while every token
      stands for one (pruners keep ``None``; attention then adds no size bias).
    * ``destination``: ``LongTensor[B, N]`` for every input local token, the index (among the ``K``) of the
      local token it went into, ``-1`` where it was dropped.
    """

    tokens: Tensor
    positions: Tensor
    sizes: Optional[Tensor]
    destination: Tensor


class TokenPruner(nn.Module):
    """Keep ``ceil(keep_rate * N)`` of ``N`` local tokens.

    ``select(scores, valid_mask)`` takes per-token scores ``[B, N]`` (higher = more informative) and an
    optional bool ``valid_mask`` ``[B, N]`` (``False`` for padding, which is never kept before a valid
    token) and returns the kept positions ``[B, K]`` in ascending order, so that kept tokens stay in
    their current order.

    A video encoder calls :meth:`reduce`, which by default keeps the tokens :meth:`select` picks from the
    head-averaged [CLS] attention; a reducer that combines tokens (:class:`~.token_merger.TokenMerger`)
    overrides it.
    """

    argument_checks = dict(keep_rate=number_in(0, 1, low_open=True))

    def __init__(self, keep_rate: float) -> None:
        super().__init__()
        check_arguments(self, keep_rate=keep_rate)
        self.keep_rate = float(keep_rate)

    def num_keep(self, num_tokens: int) -> int:
        return max(1, min(num_tokens, math.ceil(self.keep_rate * num_tokens - 1e-9)))

    def rank_scores(self, scores: Tensor) -> Tensor:
        """Scores the top-k selection ranks by; subclasses may replace them (e.g. random ones)."""
        return scores

    def select(self, scores: Tensor, valid_mask: Optional[Tensor] = None) -> Tensor:
        ranked = self.rank_scores(scores.detach()).float()
        if valid_mask is not None:
            ranked = ranked.masked_fill(~valid_mask, float('-inf'))
        keep = ranked.topk(self.num_keep(scores.shape[-1]), dim=-1).indices
        return keep.sort(dim=-1).values

    def reduce(self, x: Tensor, positions: Tensor, sizes: Optional[Tensor], global_probs: Tensor, keys: Tensor,
               frame_grid: Tuple[int, int]) -> TokenReduction:
        """Reduce the local tokens of one layer's output.

        Args:
            x: ``[B, 1+N, C]`` hidden states, [CLS] first.
            positions: ``LongTensor[B or 1, N]`` raster positions of the local tokens.
            sizes: ``[B, 1+N]`` token sizes, or ``None`` (all 1).
            global_probs: ``[B, H, 1, 1+N]`` the layer's [CLS] attention.
            keys: ``[B, 1+N, D]`` the layer's head-averaged attention keys.
            frame_grid: ``(Hp, Wp)`` patches per frame (to read ``positions`` as ``(t, h, w)``).

        The default keeps the :meth:`select` ed tokens ranked by head-averaged [CLS] attention.
        """
        batch, length = x.shape[:2]
        keep = self.select(global_probs[:, :, 0, 1:].mean(dim=1))  # [B, K], ascending
        local = x[:, 1:].gather(1, keep[..., None].expand(-1, -1, x.shape[-1]))
        if sizes is not None:
            sizes = torch.cat([sizes[:, :1], sizes[:, 1:].gather(1, keep)], dim=1)
        destination = keep.new_full((batch, length - 1), -1).scatter_(
            1, keep, torch.arange(keep.shape[1], device=keep.device).expand_as(keep))
        return TokenReduction(torch.cat([x[:, :1], local], dim=1), positions.expand(batch, -1).gather(1, keep),
                              sizes, destination)
