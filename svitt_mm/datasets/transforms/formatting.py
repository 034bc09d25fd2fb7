"""Pack a pipeline's results into the model's input layout, and collate packed items into batches."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from svitt_mm.registry import FUNCTIONS, TRANSFORMS

REQUIRED_KEYS = {
    'imgs': 'DecodeVideoFrames',
    'num_clips': 'SampleFrames',
    'clip_len': 'SampleFrames',
    'text_ids': 'TokenizeCaptions',
    'text_mask': 'TokenizeCaptions',
    'captions': 'the dataset',
    'video_id': 'the dataset',
    'sample_idx': 'the dataset',
}


@TRANSFORMS.register_module()
class PackVideoTextInputs(BaseTransform):
    """Final pipeline step.

    Returns:
        ``{'inputs': uint8 Tensor [K, T, 3, H, W], 'data_samples': {'text_ids': LongTensor [nc, L],
        'text_mask': LongTensor [nc, L], 'video_id': int, 'sample_idx': int, 'captions': list[str]}}``
        where ``nc`` is the number of captions of the item (1 in training).
    """

    def transform(self, results: Dict) -> Dict:
        missing = [key for key in REQUIRED_KEYS if key not in results]
        if missing:
            raise KeyError('PackVideoTextInputs: missing ' + ', '.join(
                f'{key!r} (set by {REQUIRED_KEYS[key]})' for key in missing))
        imgs = np.asarray(results['imgs'])
        num_clips, clip_len = results['num_clips'], results['clip_len']
        if imgs.ndim != 4 or imgs.shape[0] != num_clips * clip_len or imgs.shape[-1] != 3:
            raise ValueError(f'PackVideoTextInputs: expected imgs [num_clips * clip_len = '
                             f'{num_clips * clip_len}, H, W, 3], got {imgs.shape} '
                             f'({results.get("video_path", "unknown video")})')
        video = torch.from_numpy(np.ascontiguousarray(imgs))
        video = video.view(num_clips, clip_len, *imgs.shape[1:]).permute(0, 1, 4, 2, 3).contiguous()
        data_sample = dict(
            text_ids=torch.as_tensor(results['text_ids'], dtype=torch.long),
            text_mask=torch.as_tensor(results['text_mask'], dtype=torch.long),
            video_id=int(results['video_id']),
            sample_idx=int(results['sample_idx']),
            captions=list(results['captions']),
        )
        return dict(inputs=video, data_samples=data_sample)


@FUNCTIONS.register_module()
def video_text_collate(data_batch: Sequence[Dict]) -> Dict[str, List]:
    """Collate packed items into ``{'inputs': [B tensors], 'data_samples': [B dicts]}``.

    Use it as the dataloaders' ``collate_fn=dict(type='svitt_mm.video_text_collate')``. MMEngine's default
    ``pseudo_collate`` would transpose each item's ``captions`` list (and fail outright when items hold
    different numbers of captions, as evaluation items do).
    """
    return dict(inputs=[item['inputs'] for item in data_batch],
                data_samples=[item['data_samples'] for item in data_batch])


QA_REQUIRED_KEYS = {
    'imgs': 'DecodeVideoFrames',
    'num_clips': 'SampleFrames',
    'clip_len': 'SampleFrames',
    'question_ids': 'TokenizeQA',
    'question_mask': 'TokenizeQA',
    'answer_ids': 'TokenizeQA',
    'answer_mask': 'TokenizeQA',
    'answer_weights': 'TokenizeQA',
    'answers': 'the dataset',
    'question_id': 'the dataset',
    'sample_idx': 'the dataset',
}


@TRANSFORMS.register_module()
class PackVideoQAInputs(BaseTransform):
    """Final step of a video QA pipeline.

    Returns:
        ``{'inputs': uint8 Tensor [K, T, 3, H, W], 'data_samples': {'question_ids': LongTensor [Lq],
        'question_mask': LongTensor [Lq], 'answer_ids': LongTensor [n, La], 'answer_mask': LongTensor
        [n, La], 'answer_weights': FloatTensor [n], 'answers': list[str] (the ground truth as annotated),
        'question_id': int | str, 'question_type': str | None, 'sample_idx': int}}``.
    """

    def transform(self, results: Dict) -> Dict:
        missing = [key for key in QA_REQUIRED_KEYS if key not in results]
        if missing:
            raise KeyError('PackVideoQAInputs: missing ' + ', '.join(
                f'{key!r} (set by {QA_REQUIRED_KEYS[key]})' for key in missing))
        # The video layout is PackVideoTextInputs'; the caption fields it needs are filled with the
        # question so that its checks and messages apply unchanged.
        video = PackVideoTextInputs().transform(dict(
            imgs=results['imgs'], num_clips=results['num_clips'], clip_len=results['clip_len'],
            video_path=results.get('video_path', 'unknown video'), text_ids=results['question_ids'][None],
            text_mask=results['question_mask'][None], video_id=0, sample_idx=results['sample_idx'],
            captions=[results.get('question', '')]))['inputs']
        data_sample = dict(
            question_ids=torch.as_tensor(results['question_ids'], dtype=torch.long),
            question_mask=torch.as_tensor(results['question_mask'], dtype=torch.long),
            answer_ids=torch.as_tensor(results['answer_ids'], dtype=torch.long),
            answer_mask=torch.as_tensor(results['answer_mask'], dtype=torch.long),
            answer_weights=torch.as_tensor(results['answer_weights'], dtype=torch.float32),
            answers=list(results['answers']),
            question_id=results['question_id'],
            question_type=results.get('question_type'),
            sample_idx=int(results['sample_idx']),
        )
        return dict(inputs=video, data_samples=data_sample)
