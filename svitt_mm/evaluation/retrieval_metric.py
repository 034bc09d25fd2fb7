"""Recall@K / median and mean rank for text-to-video and video-to-text retrieval."""
from __future__ import annotations

from typing import Dict, List, Sequence

from mmengine.evaluator import BaseMetric
from torch import Tensor

from svitt_mm.registry import METRICS


def best_positive_rank(scores: Tensor, positives: Tensor) -> Tensor:
    """0-based rank of the best-ranked positive of each query.

    ``scores [Q, C]`` (higher = better), ``positives`` bool ``[Q, C]``; ties keep the candidates' order.
    """
    missing = (~positives.any(dim=1)).nonzero().flatten()
    if len(missing):
        raise ValueError(f'retrieval queries {missing[:10].tolist()} have no ground-truth candidate')
    order = scores.argsort(dim=1, descending=True, stable=True)
    return positives.gather(1, order).float().argmax(dim=1)


def rank_metrics(ranks: Tensor, recall_at: Sequence[int], prefix: str) -> Dict[str, float]:
    """``{prefix}/R@k`` in percent, ``{prefix}/MdR`` and ``{prefix}/MnR`` (1-based ranks)."""
    metrics = {f'{prefix}/R@{k}': 100.0 * (ranks < k).float().mean().item() for k in recall_at}
    metrics[f'{prefix}/MdR'] = (ranks + 1).float().median().item()
    metrics[f'{prefix}/MnR'] = (ranks + 1).float().mean().item()
    return metrics


@METRICS.register_module()
class RetrievalMetric(BaseMetric):
    """Retrieval metrics from full score matrices.

    ``process`` takes dicts with ``t2v_scores [Nt, Nv]``, ``v2t_scores [Nv, Nt]`` and ``positives`` bool
    ``[Nt, Nv]`` (several ground truths per query count by their best rank), optionally ``itc_scores
    [Nv, Nt]`` (the first-stage similarities, reported under ``itc/``) and ``excluded_videos`` (the number
    of broken videos the dataset excluded, passed through so that results say they are incomplete). Keys:
    ``t2v/R@1``, ``t2v/R@5``, ``t2v/R@10``, ``t2v/MdR``, ``t2v/MnR``, the same for ``v2t/``, ``R_mean``
    (mean of the six recalls) and, when given, ``excluded_videos``.
    """

    default_prefix = ''  # keys are stable and unprefixed unless a prefix is given

    def __init__(self, recall_at: Sequence[int] = (1, 5, 10), collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.recall_at = tuple(recall_at)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        self.results.extend(data_samples)

    def _two_way(self, t2v: Tensor, v2t: Tensor, positives: Tensor, prefix: str = '') -> dict:
        metrics = rank_metrics(best_positive_rank(t2v, positives), self.recall_at, f'{prefix}t2v')
        metrics.update(rank_metrics(best_positive_rank(v2t, positives.t()), self.recall_at,
                                    f'{prefix}v2t'))
        recalls = [metrics[f'{prefix}{d}/R@{k}'] for d in ('t2v', 'v2t') for k in self.recall_at]
        metrics[f'{prefix}R_mean'] = sum(recalls) / len(recalls)
        return metrics

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        result = results[0]
        positives = result['positives'].bool()
        metrics = self._two_way(result['t2v_scores'], result['v2t_scores'], positives)
        if 'itc_scores' in result:
            itc = result['itc_scores']
            metrics.update(self._two_way(itc.t(), itc, positives, prefix='itc/'))
        if 'excluded_videos' in result:
            metrics['excluded_videos'] = int(result['excluded_videos'])
        return metrics
