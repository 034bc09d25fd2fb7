"""How the scores of a video's clips combine into one score at test time (SViTT's ``mean``, ``max`` and
``lse``); used by the QA model's answer ranking and by retrieval's matching-head re-ranking."""
from __future__ import annotations

from typing import Callable, Dict

from torch import Tensor

# name -> function reducing the last dimension (the clips) of a score tensor ``[..., K] -> [...]``.
CLIP_AGGREGATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    'mean': lambda scores: scores.mean(dim=-1),
    'max': lambda scores: scores.amax(dim=-1),
    'lse': lambda scores: scores.logsumexp(dim=-1),
}
