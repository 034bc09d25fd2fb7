"""Video-text matching (ITM) head with hard-negative mining."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svitt_mm.registry import FUSION_HEADS
from svitt_mm.utils.arg_checks import check_arguments, number_in


@FUSION_HEADS.register_module()
class MatchingHead(nn.Module):
    """Binary match/no-match classifier on the fusion encoder's [CLS] state.

    Negatives are mined from the contrastive similarities: for every text one video and for every video
    one text, drawn from the softmax over the non-positive candidates (hard negatives, as SViTT does).

    Args:
        hidden_size: width of the fusion encoder's states.
        random_negative_ratio: share of the rows whose negative is drawn uniformly from the non-positive
            candidates instead (0: all hard, SViTT's mining). Hard negatives alone can starve the head of
            anything it could learn: once the contrastive ranking has put every candidate that differs in
            an easy way (another colour, shape or axis on the demo data) far down, the mined negatives are
            all ones that differ only in what neither head can see yet (frame order), the head stays at the
            label prior, and its logit ranks the easy differences at random when it re-ranks.
    """

    argument_checks = dict(random_negative_ratio=number_in(0, 1))

    def __init__(self, hidden_size: int, random_negative_ratio: float = 0.0) -> None:
        super().__init__()
        check_arguments(self, random_negative_ratio=random_negative_ratio)
        self.classifier = nn.Linear(hidden_size, 2)
        self.random_negative_ratio = random_negative_ratio

    def match_logit(self, fused_cls: Tensor) -> Tensor:
        """``[P, hidden]`` -> the positive-class logit ``[P]`` (the retrieval re-ranking score)."""
        return self.classifier(fused_cls)[:, 1]

    def sample_negatives(self, logits: Tensor, positives: Tensor,
                         generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """Draw one negative column per row of ``logits [R, C]``: by similarity, or for a
        ``random_negative_ratio`` share of the rows uniformly.

        ``positives [R, C]`` (bool) are never drawn. Returns ``(index [R], has_negative [R])``; rows with no
        negative at all (every candidate is a positive) get index 0 and ``has_negative=False``.
        """
        weights = logits.detach().float().softmax(dim=1)
        if self.random_negative_ratio > 0:
            uniform = torch.rand(len(weights), generator=generator, device=weights.device) < \
                self.random_negative_ratio
            weights[uniform] = 1.0
        weights = weights.masked_fill(positives, 0.0)
        has_negative = weights.sum(dim=1) > 0
        weights[~has_negative] = 1.0
        index = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        return index, has_negative

    def loss(self, fused_cls: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
        """Weighted 2-way cross-entropy; ``weights [P]`` zero out pairs that could not be formed."""
        per_pair = F.cross_entropy(self.classifier(fused_cls), labels, reduction='none')
        return (per_pair * weights).sum() / weights.sum().clamp_min(1.0)
