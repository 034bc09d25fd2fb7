"""Token pruners (node sparsity): choose which local tokens survive a pruning step."""
from __future__ import annotations

import math
from typing import Optional

from torch import Tensor, nn

from svitt_mm.utils.arg_checks import check_arguments, number_in


class TokenPruner(nn.Module):
    """Keep ``ceil(keep_rate * N)`` of ``N`` local tokens.

    ``select(scores, valid_mask)`` takes per-token scores ``[B, N]`` (higher = more informative) and an
    optional bool ``valid_mask`` ``[B, N]`` (``False`` for padding, which is never kept before a valid
    token) and returns the kept positions ``[B, K]`` in ascending order, so that kept tokens stay in
    their current order.
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
