"""Two-stage retrieval scoring: contrastive similarity over everything, then matching-head re-ranking.

Stage 1 scores every (video, text) pair by the cosine similarity of their contrastive embeddings (mean over a
video's clips). Stage 2 re-scores, for every query, its ``k_test`` best stage-1 candidates with the fusion
encoder's matching logit (aggregated over clips by ``mean``, ``max`` or ``lse``), alone (``score='itm'``, as
SViTT ranks) or added to the contrastive logit, the cosine divided by the learned temperature
(``score='itc+itm'``, the ALBEF/BLIP combination on the scale both heads are trained on). Candidates outside a
query's top-k rank after all of its top-k candidates, in stage-1 order. Stage-2 rows are split across ranks and
summed.
"""
from __future__ import annotations

import sys
from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
from mmengine.dist import all_reduce, get_dist_info
from mmengine.utils import ProgressBar
from torch import Tensor

from svitt_mm.models.clip_aggregation import CLIP_AGGREGATIONS
from svitt_mm.utils.arg_checks import ArgumentError


class RetrievalFeatures(NamedTuple):
    """Features of a whole test set: ``video_tokens [V, K, 1+N, C]``, ``video_emb [V, K, E]``,
    ``text_states [Nt, L, D]``, ``text_mask [Nt, L]``, ``text_emb [Nt, E]`` and ``text_video [Nt]`` (the
    index of the video each text was annotated with)."""
    video_tokens: Tensor
    video_emb: Tensor
    text_states: Tensor
    text_mask: Tensor
    text_emb: Tensor
    text_video: Tensor


def stack_features(per_sample: List[dict]) -> RetrievalFeatures:
    """Stack the model's per-sample ``predict`` dicts (any order) into test-set tensors."""
    samples = sorted(per_sample, key=lambda s: s['sample_idx'])
    counts = torch.tensor([len(s['text_emb']) for s in samples])
    return RetrievalFeatures(
        video_tokens=torch.stack([s['video_tokens'] for s in samples]),
        video_emb=torch.stack([s['video_emb'] for s in samples]),
        text_states=torch.cat([s['text_states'] for s in samples]),
        text_mask=torch.cat([s['text_mask'] for s in samples]),
        text_emb=torch.cat([s['text_emb'] for s in samples]),
        text_video=torch.arange(len(samples)).repeat_interleave(counts))


def ownership_positives(features: RetrievalFeatures) -> Tensor:
    """Bool ``[Nt, V]``: each text's positive is the video it was annotated with."""
    return features.text_video[:, None] == torch.arange(features.video_emb.shape[0])[None, :]


def group_by_caption(features: RetrievalFeatures,
                     captions: Sequence[Sequence[str]]) -> Tuple[RetrievalFeatures, Tensor]:
    """One text query per distinct caption, positive for every video annotated with it.

    For corpora where several videos share a caption (SSv2 labels/templates): without grouping, a caption
    shared by ``n`` videos would be ``n`` identical queries, each with only its own video as the answer.

    Args:
        features: features whose texts are the ``captions`` of each video, in video order.
        captions: ``captions[v]`` = the caption strings of video ``v`` (as in the annotation).

    Returns:
        ``(features with only the first text of each distinct caption, positives bool [Nt', V])``.
    """
    flat = [caption for video_captions in captions for caption in video_captions]
    if len(flat) != features.text_emb.shape[0]:
        raise ValueError(f'group_by_caption: {len(flat)} captions for {features.text_emb.shape[0]} texts')
    first: Dict[str, int] = {}
    for index, caption in enumerate(flat):
        first.setdefault(caption, index)
    keep = torch.tensor(sorted(first.values()), dtype=torch.long)
    positives = torch.zeros(len(keep), len(captions), dtype=torch.bool)
    row_of = {flat[int(index)]: row for row, index in enumerate(keep)}
    for video, video_captions in enumerate(captions):
        for caption in video_captions:
            positives[row_of[caption], video] = True
    grouped = features._replace(text_states=features.text_states[keep], text_mask=features.text_mask[keep],
                                text_emb=features.text_emb[keep], text_video=features.text_video[keep])
    return grouped, positives


def contrastive_scores(features: RetrievalFeatures) -> Tensor:
    """Stage 1: ``[V, Nt]`` cosine similarities, averaged over clips."""
    return torch.einsum('vke,te->vkt', features.video_emb.float(),
                        features.text_emb.float()).mean(dim=1)


def _match_rows(model, features: RetrievalFeatures, top: Tensor, rows: Tensor, videos_are_queries: bool,
                aggregation: str, batch_size: int, device: torch.device) -> Tensor:
    """Matching logits ``[len(rows), k]`` for queries ``rows`` against their candidates ``top[rows]``."""
    num_clips = features.video_tokens.shape[1]
    query = rows[:, None].expand(-1, top.shape[1]).reshape(-1)
    candidate = top[rows].reshape(-1)
    video, text = (query, candidate) if videos_are_queries else (candidate, query)
    video = video.repeat_interleave(num_clips)
    clip = torch.arange(num_clips).repeat(len(text))
    text = text.repeat_interleave(num_clips)
    logits = []
    for start in range(0, len(text), batch_size):
        part = slice(start, start + batch_size)
        logits.append(model.match_logits(
            features.video_tokens[video[part], clip[part]].to(device),
            features.text_states[text[part]].to(device),
            features.text_mask[text[part]].to(device)).float().cpu())
    logits = torch.cat(logits) if logits else torch.zeros(0)
    return CLIP_AGGREGATIONS[aggregation](logits.view(len(rows), top.shape[1], num_clips))


def _itm_alone(itm: Tensor, itc_logit: Tensor) -> Tensor:
    return itm


def _itc_plus_itm(itm: Tensor, itc_logit: Tensor) -> Tensor:
    return itc_logit + itm


# score name -> (ITM logit [Q, k], ITC logit [Q, k]) -> stage-2 score [Q, k]
SECOND_STAGE_SCORES = {'itm': _itm_alone, 'itc+itm': _itc_plus_itm}


def check_second_stage_score(score: str, key: str = 'score') -> None:
    """Refuse an unknown second-stage score, naming the setting ``key`` it came from."""
    if score not in SECOND_STAGE_SCORES:
        raise ArgumentError(f'{key}: second-stage score {score!r} unknown; choose from '
                            f'{sorted(SECOND_STAGE_SCORES)}')


def rerank(model, features: RetrievalFeatures, stage1: Tensor, videos_are_queries: bool, k_test: int,
           aggregation: str = 'lse', batch_size: int = 64, show_progress: bool = None, score: str = 'itm',
           temperature: float = 1.0) -> Tensor:
    """Stage 2 for one direction: ``stage1 [Q, C]`` (cosine similarities) -> final scores ``[Q, C]``.

    ``score`` is a key of :data:`SECOND_STAGE_SCORES`; ``temperature`` (the contrastive head's) turns a
    cosine into the contrastive logit for ``'itc+itm'``. A progress bar is shown on rank 0 when
    ``show_progress`` (default: when stdout is a terminal).
    """
    if show_progress is None:
        show_progress = sys.stdout.isatty()
    if aggregation not in CLIP_AGGREGATIONS:
        raise ValueError(f'clip aggregation {aggregation!r} unknown; choose from {sorted(CLIP_AGGREGATIONS)}')
    check_second_stage_score(score)
    k = min(k_test, stage1.shape[1])
    top = stage1.topk(k, dim=1).indices
    rank, world = get_dist_info()
    device = next(model.parameters()).device
    mine = torch.arange(rank, stage1.shape[0], world)
    itm = torch.zeros(stage1.shape[0], k)
    progress = ProgressBar(len(mine)) if show_progress and rank == 0 else None
    chunk = max(1, batch_size // max(1, k * features.video_tokens.shape[1]))
    for start in range(0, len(mine), chunk):
        rows = mine[start:start + chunk]
        itm[rows] = _match_rows(model, features, top, rows, videos_are_queries, aggregation,
                                batch_size, device)
        if progress is not None:
            for _ in rows:
                progress.update()
    if world > 1:
        itm = itm.to(device)
        all_reduce(itm)
        itm = itm.cpu()
    second = SECOND_STAGE_SCORES[score](itm, stage1.gather(1, top) / temperature)
    # Non-top-k candidates keep their stage-1 order, below every re-ranked one.
    floor = second.min() - (stage1.max() - stage1.min()) - 1.0
    final = stage1 - stage1.max() + floor
    return final.scatter(1, top, second)
