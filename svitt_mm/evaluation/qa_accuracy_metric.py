"""Exact-match accuracy of predicted answers, overall and per question type."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Sequence

from mmengine.evaluator import BaseMetric

from svitt_mm.registry import METRICS
from svitt_mm.utils.text import clean_caption


@METRICS.register_module()
class QAAccuracy(BaseMetric):
    """Exact-match QA accuracy in percent.

    ``process`` takes the model's per-question dicts with ``pred_answer`` (str), ``gt_answers`` (list of
    str) and ``question_type`` (str or ``None``). A prediction is correct when, after
    :func:`~svitt_mm.utils.text.clean_caption` (the question/answer cleaning of ``TokenizeQA``), it
    equals one of the ground-truth answers. Keys: ``acc``, ``acc/<type>`` for every question type
    present, ``num_questions``, and ``excluded_videos`` when the dataset dropped broken videos
    (``on_broken_media='exclude'``; its ``metainfo['excluded_media']``).
    """

    default_prefix = ''  # keys are stable and unprefixed unless a prefix is given

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            gt = {clean_caption(answer) for answer in sample['gt_answers']}
            self.results.append(dict(correct=clean_caption(sample['pred_answer']) in gt,
                                     question_type=sample.get('question_type')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('QAAccuracy: no predictions were collected (empty test split?)')
        by_type: Dict[str, List[bool]] = defaultdict(list)
        for result in results:
            if result['question_type'] is not None:
                by_type[result['question_type']].append(result['correct'])
        metrics = {'acc': 100.0 * sum(r['correct'] for r in results) / len(results)}
        for question_type in sorted(by_type):
            correct = by_type[question_type]
            metrics[f'acc/{question_type}'] = 100.0 * sum(correct) / len(correct)
        metrics['num_questions'] = len(results)
        excluded = (self.dataset_meta or {}).get('excluded_media')
        if excluded is not None:  # the dataset dropped broken videos (on_broken_media='exclude')
            metrics['excluded_videos'] = excluded
        return metrics
