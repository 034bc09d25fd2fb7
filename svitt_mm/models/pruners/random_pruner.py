"""Random token pruning: the ablation of attention-guided pruning."""
from __future__ import annotations

import torch
from torch import Tensor

from svitt_mm.registry import TOKEN_PRUNERS

from .base import TokenPruner


@TOKEN_PRUNERS.register_module()
class RandomPruner(TokenPruner):
    """Keep a uniformly random subset of tokens.

    In training the subset is re-drawn at every call; in evaluation it is drawn from a generator
    re-seeded with ``eval_seed`` at every call, so evaluation is reproducible.
    """

    def __init__(self, keep_rate: float, eval_seed: int = 0) -> None:
        super().__init__(keep_rate)
        self.eval_seed = eval_seed

    def rank_scores(self, scores: Tensor) -> Tensor:
        generator = None
        if not self.training:
            generator = torch.Generator(device=scores.device).manual_seed(self.eval_seed)
        return torch.rand(scores.shape, generator=generator, device=scores.device)
