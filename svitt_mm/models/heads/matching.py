"""Video-text matching (ITM) head with hard-negative mining."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svitt_mm.registry import FUSION_HEADS


@FUSION_HEADS.register_module()
class MatchingHead(nn.Module):
    """Binary match/no-match classifier on the fusion encoder's [CLS] state.

    Negatives are mined from the contrastive similarities: for every text one video and for every video
    one text, drawn from the softmax over the non-positive candidates (hard negatives).
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden_size, 2)

    def match_logit(self, fused_cls: Tensor) -> Tensor:
        """``[P, hidden]`` -> the positive-class logit ``[P]`` (the retrieval re-ranking score)."""
        return self.classifier(fused_cls)[:, 1]

    @staticmethod
    def sample_negatives(logits: Tensor, positives: Tensor,
                         generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """Draw one negative column per row of ``logits [R, C]``.

        ``positives [R, C]`` (bool) are never drawn. Returns ``(index [R], has_negative [R])``; rows with no
        negative at all (every candidate is a positive) get index 0 and ``has_negative=False``.
        """
        weights = logits.detach().float().softmax(dim=1).masked_fill(positives, 0.0)
        has_negative = weights.sum(dim=1) > 0
        weights[~has_negative] = 1.0
        index = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        return index, has_negative

    def loss(self, fused_cls: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
        """Weighted 2-way cross-entropy; ``weights [P]`` zero out pairs that could not be formed."""
        per_pair = F.cross_entropy(self.classifier(fused_cls), labels, reduction='none')
        return (per_pair * weights).sum() / weights.sum().clamp_min(1.0)
