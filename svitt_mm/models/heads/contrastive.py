"""Video-text contrastive (ITC) head."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svitt_mm.registry import FUSION_HEADS


def positive_targets(query_ids: Tensor, key_ids: Tensor) -> Tensor:
    """Soft targets ``[Q, K]``: uniform over the keys that share the query's id (rows sum to 1)."""
    same = (query_ids[:, None] == key_ids[None, :]).float()
    return same / same.sum(dim=1, keepdim=True).clamp_min(1.0)


@FUSION_HEADS.register_module()
class ContrastiveHead(nn.Module):
    """Projects pooled video and text [CLS] features into a joint space and scores them.

    Args:
        vision_width / text_width: input feature sizes.
        embed_dim: joint embedding size (paper: 256).
        temperature: initial (learnable) softmax temperature, clamped to ``temperature_range`` before
            every use.
    """

    def __init__(self, vision_width: int, text_width: int, embed_dim: int = 256,
                 temperature: float = 0.07,
                 temperature_range: Tuple[float, float] = (0.001, 0.5)) -> None:
        super().__init__()
        self.vision_proj = nn.Linear(vision_width, embed_dim)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.temperature = nn.Parameter(torch.tensor(float(temperature)))
        self.temperature_range = tuple(temperature_range)

    def embed_video(self, pooled: Tensor) -> Tensor:
        """``[..., vision_width]`` -> unit-norm ``[..., embed_dim]``."""
        return F.normalize(self.vision_proj(pooled), dim=-1)

    def embed_text(self, text_cls: Tensor) -> Tensor:
        """``[..., text_width]`` -> unit-norm ``[..., embed_dim]``."""
        return F.normalize(self.text_proj(text_cls), dim=-1)

    def logits(self, video_emb: Tensor, text_emb: Tensor) -> Tensor:
        """Temperature-scaled similarities ``[Bv, Bt]``."""
        with torch.no_grad():
            self.temperature.clamp_(*self.temperature_range)
        return video_emb @ text_emb.t() / self.temperature

    def loss(self, video_emb: Tensor, text_emb: Tensor, video_ids: Tensor,
             text_video_ids: Tensor) -> Tuple[Tensor, Tensor]:
        """Symmetric InfoNCE with id-based positives.

        ``video_emb [Bv, E]``, ``text_emb [Bt, E]``, ``video_ids [Bv]`` and ``text_video_ids [Bt]`` (the
        video each text describes; equal ids are positives, so repeated videos are not negatives).
        Returns ``(loss, logits [Bv, Bt])``.
        """
        logits = self.logits(video_emb, text_emb)
        v2t = -(positive_targets(video_ids, text_video_ids) * logits.log_softmax(dim=1)).sum(1).mean()
        t2v = -(positive_targets(text_video_ids, video_ids) * logits.t().log_softmax(dim=1)).sum(1).mean()
        return (v2t + t2v) / 2, logits
