"""Batch preprocessing for video-text models: stack and normalise clips, flatten captions."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from svitt_mm.registry import MODELS
from svitt_mm.utils.arg_checks import ArgumentError

SAMPLE_KEYS = ('text_ids', 'text_mask', 'video_id', 'sample_idx', 'captions')


def _as_sample_list(data_samples: Union[Sequence[Mapping], Mapping[str, Sequence]],
                    batch_size: int) -> List[Mapping]:
    """Per-item data sample dicts from either a list of dicts or a dict of per-item lists."""
    if isinstance(data_samples, Mapping):
        missing = [key for key in SAMPLE_KEYS if key not in data_samples]
        if missing:
            raise KeyError(f'VideoTextDataPreprocessor: data_samples lacks {missing} '
                           f'(expected the keys of PackVideoTextInputs: {SAMPLE_KEYS})')
        lengths = {key: len(data_samples[key]) for key in SAMPLE_KEYS}
        if any(length != batch_size for length in lengths.values()):
            raise ValueError(f'VideoTextDataPreprocessor: data_samples lists must each hold one entry per '
                             f'video ({batch_size}), got lengths {lengths}; with pseudo_collate the '
                             f'caption lists are transposed: set the dataloader\'s '
                             f'collate_fn=dict(type="svitt_mm.video_text_collate")')
        return [{key: data_samples[key][b] for key in SAMPLE_KEYS} for b in range(batch_size)]
    samples = list(data_samples)
    if len(samples) != batch_size:
        raise ValueError(f'VideoTextDataPreprocessor: {len(samples)} data_samples for {batch_size} videos')
    return samples


def _check_captions(samples: Sequence[Mapping]) -> None:
    for b, sample in enumerate(samples):
        captions, ids = sample['captions'], sample['text_ids']
        if isinstance(captions, str) or len(captions) != ids.shape[0]:
            raise ValueError(f'VideoTextDataPreprocessor: item {b} has {ids.shape[0]} tokenised captions but '
                             f'captions={captions!r}; with pseudo_collate the caption lists are transposed: '
                             f'set the dataloader\'s collate_fn=dict(type="svitt_mm.video_text_collate")')


@MODELS.register_module()
class VideoTextDataPreprocessor(BaseDataPreprocessor):
    """Turn a collated batch into model inputs on the model's device.

    Input ``data``: ``{'inputs': B uint8 tensors [K, T, 3, H, W] (a list, or one stacked tensor),
    'data_samples': B dicts from PackVideoTextInputs, or one dict of B-long lists}``.

    Output: ``{'inputs': float [B, K, T, 3, H, W], (x - mean) / std per RGB channel,
    'data_samples': {'text_ids': Long [C, L], 'text_mask': Long [C, L], 'text_owner': Long [C] (batch
    index of each caption's video), 'video_ids': Long [B], 'sample_idx': Long [B],
    'captions': list of C str}}`` with ``C`` = total captions (``C == B`` in training, one caption each).

    Args:
        mean: per-channel mean on the 0-255 scale (SViTT: 0.5 after /255).
        std: per-channel std on the 0-255 scale.
    """

    def __init__(self, mean: Tuple[float, float, float] = (127.5, 127.5, 127.5),
                 std: Tuple[float, float, float] = (127.5, 127.5, 127.5),
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ArgumentError(f'VideoTextDataPreprocessor: mean and std need 3 values (RGB), std > 0; '
                                f'got mean={mean!r}, std={std!r}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(3, 1, 1),
                             persistent=False)

    def _stack_videos(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        videos = list(inputs)
        shapes = {tuple(video.shape) for video in videos}
        if len(shapes) != 1 or len(next(iter(shapes))) != 5 or next(iter(shapes))[2] != 3:
            raise ValueError(f'VideoTextDataPreprocessor: every video must be [K, T, 3, H, W] with the '
                             f'same shape, got {sorted(shapes)}')
        video = torch.stack([v.to(self.device, non_blocking=self._non_blocking) for v in videos])
        return (video.float() - self.mean) / self.std

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        """Normalise the videos and flatten every item's captions into one batch (see class docs)."""
        inputs = self._stack_videos(data['inputs'])
        samples = _as_sample_list(data['data_samples'], inputs.shape[0])
        _check_captions(samples)
        lengths = {tuple(sample['text_ids'].shape[1:]) for sample in samples}
        if len(lengths) != 1:
            raise ValueError(f'VideoTextDataPreprocessor: text_ids of different lengths {sorted(lengths)}; '
                             f'use one TokenizeCaptions max_length for the whole dataset')
        counts = torch.tensor([sample['text_ids'].shape[0] for sample in samples])
        device = self.device
        data_samples = dict(
            text_ids=torch.cat([s['text_ids'] for s in samples]).long().to(device),
            text_mask=torch.cat([s['text_mask'] for s in samples]).long().to(device),
            text_owner=torch.repeat_interleave(torch.arange(len(samples)), counts).to(device),
            video_ids=torch.tensor([int(s['video_id']) for s in samples], device=device),
            sample_idx=torch.tensor([int(s['sample_idx']) for s in samples], device=device),
            captions=[caption for s in samples for caption in s['captions']],
        )
        return dict(inputs=inputs, data_samples=data_samples)
