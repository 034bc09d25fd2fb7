"""Use a trained model: encode videos and texts, rank videos for text queries, answer questions.

Inputs are prepared by the test pipeline of the config the model was built from
(:func:`~svitt_mm.apis.init_model`), and ranking is the two-stage scoring of ``tools/test.py``
(:mod:`svitt_mm.engine.retrieval_scoring`), so results equal what evaluation computes.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from svitt_mm.datasets.transforms import VideoDecodeError
from svitt_mm.engine import retrieval_scoring

from .embeddings import TextEmbeddings, VideoEmbeddings
from .pipeline_inputs import Video, VideoItems, config_test_pipeline, model_batch, tokenize_texts

Progress = Union[bool, tqdm]


def _video_id(video: Video, index: int) -> str:
    return video if isinstance(video, str) else f'clip {index}'


def _batches(model: nn.Module, videos: Sequence[Video], fields: Callable[[int], dict], batch_size: int,
             num_workers: int, progress: Progress, what: str):
    """Yield ``(indices, model batch or None, {index: reason})`` per batch of ``videos``."""
    items = VideoItems(videos, config_test_pipeline(model), fields)
    loader = DataLoader(items, batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    bar = progress if isinstance(progress, tqdm) else tqdm(total=len(items), unit='video', desc=what,
                                                            disable=not progress)
    try:
        for batch in loader:
            good = [(index, item) for index, item, _ in batch if item is not None]
            broken = {index: reason for index, _, reason in batch if reason is not None}
            data = model_batch(model, [item for _, item in good]) if good else None
            yield [index for index, _ in good], data, broken
            bar.update(len(batch))
    finally:
        if bar is not progress:
            bar.close()


@torch.no_grad()
def encode_videos(model: nn.Module, videos: Sequence[Video], batch_size: int = 8, num_workers: int = 0,
                  progress: Progress = True, skip_broken: bool = False,
                  ids: Optional[Sequence[str]] = None) -> VideoEmbeddings:
    """Encode ``videos`` with a retrieval model from :func:`~svitt_mm.apis.init_model`.

    Args:
        videos: video file paths, or decoded clips (uint8 RGB ``[N, H, W, 3]`` frames), read and sampled
            by the config's test pipeline.
        batch_size: videos per forward pass.
        num_workers: data-loader processes that decode videos.
        progress: show a progress bar (or update this ``tqdm`` bar).
        skip_broken: leave out videos that cannot be decoded, listing them in ``.failed`` (id ->
            reason; when none can be decoded, the tensors are empty); by default the first raises
            :class:`~svitt_mm.datasets.transforms.VideoDecodeError`.
        ids: the videos' ids (default: the paths as given; ``'clip {i}'`` for decoded clips).

    Returns:
        :class:`~svitt_mm.apis.embeddings.VideoEmbeddings` on the CPU: ``ids``, ``embeddings [N, E]``,
        ``clip_embeddings [N, K, E]`` and ``tokens [N, K, 1+P, C]`` (for re-ranking).
    """
    ids = list(ids) if ids is not None else [_video_id(video, i) for i, video in enumerate(videos)]
    if len(ids) != len(videos):
        raise ValueError(f'encode_videos: {len(ids)} ids for {len(videos)} videos')
    kept: List[int] = []
    tokens: List[Tensor] = []
    embeddings: List[Tensor] = []
    failed: Dict[str, str] = {}
    for indices, data, broken in _batches(model, videos, lambda i: dict(captions=[''], video_id=0),
                                          batch_size, num_workers, progress, 'encoding videos'):
        for index, reason in broken.items():
            if not skip_broken:
                raise VideoDecodeError(ids[index], reason)
            failed[ids[index]] = reason
        if data is not None:
            features = model.encode_video(data['inputs'])
            kept.extend(indices)
            tokens.append(features.tokens.float().cpu())
            embeddings.append(features.embedding.float().cpu())
    if not kept:
        empty = torch.zeros(0)
        return VideoEmbeddings(ids=[], embeddings=empty, clip_embeddings=empty, tokens=empty, failed=failed)
    clip_embeddings = torch.cat(embeddings)
    return VideoEmbeddings(ids=[ids[i] for i in kept], embeddings=clip_embeddings.mean(dim=1),
                           clip_embeddings=clip_embeddings, tokens=torch.cat(tokens), failed=failed)


@torch.no_grad()
def encode_texts(model: nn.Module, texts: Sequence[str], batch_size: int = 64) -> TextEmbeddings:
    """Encode ``texts`` (cleaned and tokenised as the config's test pipeline does captions) with a
    retrieval model from :func:`~svitt_mm.apis.init_model` -> :class:`TextEmbeddings` on the CPU."""
    if isinstance(texts, str):
        raise TypeError('encode_texts takes a list of texts, got one string')
    ids, mask = tokenize_texts(config_test_pipeline(model), texts)
    device = next(model.parameters()).device
    states, embeddings = [], []
    for start in range(0, len(ids), batch_size):
        features = model.encode_text(ids[start:start + batch_size].to(device),
                                     mask[start:start + batch_size].to(device))
        states.append(features.states.float().cpu())
        embeddings.append(features.embedding.float().cpu())
    return TextEmbeddings(texts=list(texts), embeddings=torch.cat(embeddings), states=torch.cat(states),
                          mask=mask)


@torch.no_grad()
def rank_videos(model: nn.Module, texts: Union[Sequence[str], TextEmbeddings],
                video_embeddings: VideoEmbeddings, top_k: int = 10,
                rerank: int = 0) -> List[List[Tuple[str, float]]]:
    """The best ``top_k`` videos for each text, best first, as ``(video id, score)``.

    Stage 1 scores every video by contrastive similarity (cosine, averaged over clips). With
    ``rerank=k``, the matching head re-scores each text's ``k`` best stage-1 videos (the config's
    ``test_cfg.score``: its logit, or the contrastive logit plus it; clips combined by
    ``test_cfg.clip_aggregation``), which then rank above the rest: the two-stage scoring of
    ``tools/test.py`` with ``k_test=k``. Scores are cosine similarities without re-ranking, second-stage
    scores for re-ranked videos.

    Args:
        texts: query texts, or their :func:`encode_texts` result.
        video_embeddings: :func:`encode_videos` output or a loaded feature file
            (:meth:`VideoEmbeddings.load`).
    """
    text = texts if isinstance(texts, TextEmbeddings) else encode_texts(model, texts)
    features = retrieval_scoring.RetrievalFeatures(
        video_tokens=video_embeddings.tokens, video_emb=video_embeddings.clip_embeddings,
        text_states=text.states, text_mask=text.mask, text_emb=text.embeddings,
        text_video=torch.zeros(len(text), dtype=torch.long))
    scores = retrieval_scoring.contrastive_scores(features).t()  # [texts, videos]
    if rerank > 0:
        test_cfg = getattr(model, 'cfg', {}).get('test_cfg') or {}
        scores = retrieval_scoring.rerank(model, features, scores, False, rerank,
                                          test_cfg.get('clip_aggregation', 'lse'),
                                          test_cfg.get('match_batch_size', 64),
                                          score=test_cfg.get('score', 'itm'),
                                          temperature=float(model.contrastive_head.temperature))
    best = scores.topk(min(top_k, scores.shape[1]), dim=1)
    return [[(video_embeddings.ids[index], float(score)) for score, index in zip(row_scores, row_indices)]
            for row_scores, row_indices in zip(best.values.tolist(), best.indices.tolist())]


@torch.no_grad()
def answer_questions(model: nn.Module, videos: Sequence[Video], questions: Sequence[str], top_k: int = 5,
                     batch_size: int = 8, num_workers: int = 0,
                     progress: Progress = True) -> List[List[Tuple[str, float]]]:
    """Answer ``questions[i]`` about ``videos[i]`` with a video QA model from
    :func:`~svitt_mm.apis.init_model`.

    Returns, per question, the ``top_k`` best answers of the model's answer list (at most its
    ``k_test`` candidates), best first, as ``(answer, score)`` with the score the answer's
    log-likelihood (clips combined by the model's ``clip_aggregation``), as the QA evaluation ranks them.
    Raises :class:`~svitt_mm.datasets.transforms.VideoDecodeError` for a video that cannot be decoded.
    """
    if not hasattr(model, 'score_answers'):
        raise ValueError(f'answer_questions needs a video QA model, got {type(model).__name__}')
    if len(videos) != len(questions):
        raise ValueError(f'answer_questions: {len(videos)} videos but {len(questions)} questions '
                         f'(one question per video)')
    answers: List[Optional[List[Tuple[str, float]]]] = [None] * len(videos)
    fields = lambda i: dict(question=questions[i], answers=[''], question_id=i)  # noqa: E731
    for indices, data, broken in _batches(model, videos, fields, batch_size, num_workers, progress,
                                          'answering'):
        for index, reason in broken.items():
            raise VideoDecodeError(_video_id(videos[index], index), reason)
        states = model.extract_features(data['inputs'], data['data_samples'])
        candidates, scores = model.score_answers(states, data['data_samples']['question_mask'])
        order = scores.argsort(dim=1, descending=True)[:, :top_k]
        for row, index in enumerate(indices):
            answers[index] = [(model.answers[int(candidates[row, j])], float(scores[row, j]))
                              for j in order[row].tolist()]
    return answers
