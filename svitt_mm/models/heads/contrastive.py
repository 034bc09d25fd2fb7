"""Video-text contrastive (ITC) head."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F
from torch import Tensor, nn

from svitt_mm.registry import EMBEDDING_HEADS


def positive_targets(query_ids: Tensor, key_ids: Tensor) -> Tensor:
    """Soft targets ``[Q, K]``: uniform over the keys that share the query's id (rows sum to 1)."""
    same = (query_ids[:, None] == key_ids[None, :]).float()
    return same / same.sum(dim=1, keepdim=True).clamp_min(1.0)


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor [n, ...]`` from every rank along dim 0 -> ``[world_size * n, ...]``.

    Gradients flow back to every rank's own slice (summed over the ranks whose losses used it), so
    with DDP's gradient averaging a loss over the gathered batch trains as if it were one batch. Every
    rank must pass the same shape; a mismatch raises a ValueError on all ranks (not a hang).
    """
    shape = torch.tensor(tensor.shape, device=tensor.device)
    shapes = torch.stack(dist_fn.all_gather(shape))
    if not (shapes == shape).all():
        raise ValueError(f'ContrastiveHead(gather_negatives=True): every rank must hold the same '
                         f'batch shape, got {shapes.tolist()} (use drop_last=True in the train '
                         f'dataloader)')
    return torch.cat(dist_fn.all_gather(tensor))


@EMBEDDING_HEADS.register_module()
class ContrastiveHead(nn.Module):
    """Projects pooled video and text [CLS] features into a joint space and scores them.

    Args:
        vision_width / text_width: input feature sizes.
        embed_dim: joint embedding size (paper: 256).
        temperature: initial (learnable) softmax temperature, clamped to ``temperature_range`` before
            every use.
        gather_negatives: in distributed training, contrast each rank's videos (texts) with the texts
            (videos) of all ranks, gathered with gradient, instead of the local batch only (SViTT and
            the paper: local only, ``False``). Ids must then be unique across ranks (dataset indices
            are).
    """

    def __init__(self, vision_width: int, text_width: int, embed_dim: int = 256,
                 temperature: float = 0.07,
                 temperature_range: Tuple[float, float] = (0.001, 0.5),
                 gather_negatives: bool = False) -> None:
        super().__init__()
        self.vision_proj = nn.Linear(vision_width, embed_dim)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.temperature = nn.Parameter(torch.tensor(float(temperature)))
        self.temperature_range = tuple(temperature_range)
        self.gather_negatives = gather_negatives

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
        """Symmetric InfoNCE with id-based positives: per direction, ``F.cross_entropy`` with the
        probability targets of :func:`positive_targets`, i.e. the mean over queries ``i`` of
        ``-sum_j targets[i, j] * log_softmax(logits)[i, j]``.

        ``video_emb [Bv, E]``, ``text_emb [Bt, E]``, ``video_ids [Bv]`` and ``text_video_ids [Bt]`` (the
        video each text describes; equal ids are positives, so repeated videos are not negatives).
        With ``gather_negatives`` (and more than one rank) the keys of each direction are the gathered
        ``[W * Bt]`` texts / ``[W * Bv]`` videos; the loss is still the mean over the local queries.
        Returns ``(loss, logits [Bv, Bt])``: the local logits (hard negatives are mined from them).
        """
        logits = self.logits(video_emb, text_emb)
        if not (self.gather_negatives and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            v2t = F.cross_entropy(logits, positive_targets(video_ids, text_video_ids))
            t2v = F.cross_entropy(logits.t(), positive_targets(text_video_ids, video_ids))
            return (v2t + t2v) / 2, logits
        all_text, all_text_ids = gather_with_grad(text_emb), gather_with_grad(text_video_ids)
        all_video, all_video_ids = gather_with_grad(video_emb), gather_with_grad(video_ids)
        v2t = F.cross_entropy(video_emb @ all_text.t() / self.temperature,
                              positive_targets(video_ids, all_text_ids))
        t2v = F.cross_entropy(text_emb @ all_video.t() / self.temperature,
                              positive_targets(text_video_ids, all_video_ids))
        return (v2t + t2v) / 2, logits
