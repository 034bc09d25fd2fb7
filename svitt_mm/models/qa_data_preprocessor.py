"""Batch preprocessing for video question answering: stack and normalise clips, flatten answers."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import torch

from svitt_mm.registry import MODELS

from .data_preprocessor import VideoTextDataPreprocessor

QA_SAMPLE_KEYS = ('question_ids', 'question_mask', 'answer_ids', 'answer_mask', 'answer_weights',
                  'answers', 'question_id', 'question_type', 'sample_idx')


def _check_samples(data_samples: Any, batch_size: int) -> Sequence[Mapping]:
    if isinstance(data_samples, Mapping) or len(data_samples) != batch_size:
        raise ValueError('VideoQADataPreprocessor: expected one data_samples dict per video (from '
                         'PackVideoQAInputs); set the dataloader\'s '
                         'collate_fn=dict(type="svitt_mm.video_text_collate")')
    for b, sample in enumerate(data_samples):
        missing = [key for key in QA_SAMPLE_KEYS if key not in sample]
        if missing:
            raise KeyError(f'VideoQADataPreprocessor: data sample {b} lacks {missing}; end the pipeline '
                           f'with PackVideoQAInputs')
    for key in ('question_ids', 'answer_ids'):
        lengths = {tuple(sample[key].shape[-1:]) for sample in data_samples}
        if len(lengths) != 1:
            raise ValueError(f'VideoQADataPreprocessor: {key} of different lengths {sorted(lengths)}; use '
                             f'one TokenizeQA for the whole dataset')
    return data_samples


@MODELS.register_module()
class VideoQADataPreprocessor(VideoTextDataPreprocessor):
    """Turn a collated QA batch into model inputs on the model's device.

    Input ``data``: ``{'inputs': B uint8 tensors [K, T, 3, H, W], 'data_samples': B dicts from
    PackVideoQAInputs}``.

    Output: ``{'inputs': float [B, K, T, 3, H, W], (x - mean) / std, 'data_samples': {'question_ids':
    Long [B, Lq], 'question_mask': Long [B, Lq], 'answer_ids': Long [A, La], 'answer_mask': Long [A, La],
    'answer_weights': float [A], 'answer_counts': Long [B], 'answer_owner': Long [A] (batch index of
    each answer's question), 'meta': B dicts of question_id, answers, question_type, sample_idx}}`` with
    ``A`` = the distinct answers of all B questions. ``mean`` / ``std`` as in
    :class:`VideoTextDataPreprocessor`.
    """

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        """Normalise the videos and flatten every question's answers into one batch."""
        inputs = self._stack_videos(data['inputs'])
        samples = _check_samples(data['data_samples'], inputs.shape[0])
        counts = torch.tensor([len(sample['answer_ids']) for sample in samples])
        device = self.device
        data_samples = dict(
            question_ids=torch.stack([s['question_ids'] for s in samples]).long().to(device),
            question_mask=torch.stack([s['question_mask'] for s in samples]).long().to(device),
            answer_ids=torch.cat([s['answer_ids'] for s in samples]).long().to(device),
            answer_mask=torch.cat([s['answer_mask'] for s in samples]).long().to(device),
            answer_weights=torch.cat([s['answer_weights'] for s in samples]).float().to(device),
            answer_counts=counts.to(device),
            answer_owner=torch.repeat_interleave(torch.arange(len(samples)), counts).to(device),
            meta=[dict(question_id=s['question_id'], answers=list(s['answers']),
                       question_type=s['question_type'], sample_idx=int(s['sample_idx']))
                  for s in samples],
        )
        return dict(inputs=inputs, data_samples=data_samples)
