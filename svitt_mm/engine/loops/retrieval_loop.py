"""Validation/test loops for two-stage video-text retrieval."""
from __future__ import annotations

import logging
from typing import Dict, Optional

import torch
from mmengine.dist import broadcast_object_list, collect_results, get_dist_info
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop
from mmengine.runner.amp import autocast

from svitt_mm.registry import LOOPS
from svitt_mm.utils.arg_checks import ArgumentError

from ..retrieval_scoring import (check_second_stage_score, contrastive_scores, group_by_caption,
                                 ownership_positives, rerank, stack_features)


def _to_cpu(sample: dict) -> dict:
    return {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in sample.items()}


def k_test_warning(k_test: int, num_videos: int, num_texts: int) -> Optional[str]:
    """The warning to log when ``k_test`` exceeds the candidates of a direction (``None`` otherwise):
    re-ranking then covers all candidates of that direction, i.e. ``k_test`` is clamped."""
    if k_test <= min(num_videos, num_texts):
        return None
    return (f'k_test={k_test} is larger than the test set ({num_videos} videos, {num_texts} texts); '
            f'clamped to {min(k_test, num_videos)} video candidates per text and '
            f'{min(k_test, num_texts)} text candidates per video (every candidate is re-ranked)')


class RetrievalEvaluation:
    """Shared logic of :class:`RetrievalValLoop` and :class:`RetrievalTestLoop`.

    Extracts features of the whole split with ``model.val_step``/``test_step`` (hooks see every
    iteration), gathers them from all ranks (uneven last batches included), scores them in two stages
    and hands the score matrices to the evaluator.

    Args:
        k_test: candidates re-ranked per query by the matching head (clamped to the number of candidates,
            with a warning in the log).
        clip_aggregation: how a video's clip scores combine: ``mean``, ``max`` or ``lse``.
        match_batch_size: (video clip, text) pairs per fusion-encoder call.
        score: the second-stage score of a re-ranked candidate: ``'itm'``, the matching logit alone (SViTT's
            evaluation), or ``'itc+itm'``, the contrastive logit (cosine / temperature) plus the matching
            logit (ALBEF's and BLIP's combination; see :mod:`svitt_mm.engine.retrieval_scoring`).
    """
    stage = 'val'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False, k_test: int = 128,
                 clip_aggregation: str = 'lse', match_batch_size: int = 64, score: str = 'itm') -> None:
        super().__init__(runner, dataloader, evaluator, fp16)  # ValLoop or TestLoop, by the MRO
        if k_test < 1:
            raise ArgumentError(f'k_test must be >= 1, got {k_test}')
        check_second_stage_score(score, f'{self.stage}_cfg.score')
        self.score = score
        self.k_test = k_test
        self.clip_aggregation = clip_aggregation
        self.match_batch_size = match_batch_size

    def run(self) -> Dict[str, float]:
        runner, stage = self.runner, self.stage
        runner.call_hook(f'before_{stage}')
        runner.call_hook(f'before_{stage}_epoch')
        runner.model.eval()
        step = getattr(runner.model, f'{stage}_step')
        per_sample = []
        with torch.no_grad():
            for idx, data_batch in enumerate(self.dataloader):
                runner.call_hook(f'before_{stage}_iter', batch_idx=idx, data_batch=data_batch)
                with autocast(enabled=self.fp16):
                    outputs = step(data_batch)
                per_sample.extend(_to_cpu(s) for s in outputs)
                runner.call_hook(f'after_{stage}_iter', batch_idx=idx, data_batch=data_batch,
                                 outputs=None)
            gathered = collect_results(per_sample, len(self.dataloader.dataset), device='cpu')
            shared = [gathered]
            if get_dist_info()[1] > 1:
                broadcast_object_list(shared)
            features = stack_features(shared[0])
            dataset = self.dataloader.dataset
            if getattr(dataset, 'positives', 'video') == 'caption':
                captions = [dataset.get_data_info(i)['captions'] for i in range(len(dataset))]
                features, positives = group_by_caption(features, captions)
            else:
                positives = ownership_positives(features)
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            stage1 = contrastive_scores(features)
            warning = k_test_warning(self.k_test, stage1.shape[0], stage1.shape[1])
            if warning:
                print_log(f'{stage}: {warning}', logger='current', level=logging.WARNING)
            print_log(f'{stage}: re-ranking top-{self.k_test} candidates of {stage1.shape[0]} videos and '
                      f'{stage1.shape[1]} texts by {self.score}', logger='current')
            temperature = float(model.contrastive_head.temperature)
            with autocast(enabled=self.fp16):
                v2t, t2v = (rerank(model, features, scores, videos_are_queries, self.k_test,
                                   self.clip_aggregation, self.match_batch_size, score=self.score,
                                   temperature=temperature)
                            for scores, videos_are_queries in [(stage1, True), (stage1.t(), False)])
        result = dict(t2v_scores=t2v, v2t_scores=v2t, itc_scores=stage1, positives=positives)
        if getattr(dataset, 'on_broken_media', None) == 'exclude':
            result['excluded_videos'] = len(dataset.excluded_media)
            print_log(f"{stage}: {result['excluded_videos']} broken videos were excluded "
                      f"(on_broken_media='exclude'); the metrics cover the other {stage1.shape[0]}",
                      logger='current', level=logging.WARNING)
        self.evaluator.process(data_samples=[result])
        metrics = self.evaluator.evaluate(1)
        runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
        runner.call_hook(f'after_{stage}')
        return metrics


@LOOPS.register_module()
class RetrievalValLoop(RetrievalEvaluation, ValLoop):
    stage = 'val'


@LOOPS.register_module()
class RetrievalTestLoop(RetrievalEvaluation, TestLoop):
    stage = 'test'
