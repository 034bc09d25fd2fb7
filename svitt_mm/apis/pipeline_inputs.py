"""Videos and texts prepared exactly as a config's test pipeline prepares test data, outside a dataset:
video files or decoded clips through the pipeline's steps, captions through its text steps, and items
turned into a model batch."""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.registry import DefaultScope
from torch import nn
from torch.utils.data import Dataset

from svitt_mm.datasets.transforms import (CleanCaptions, OpenVideo, TokenizeCaptions, TokenizeQA,
                                          VideoDecodeError, VideoReader)
from svitt_mm.registry import TRANSFORMS
from svitt_mm.utils.arg_checks import ArgumentError

# A video: a file path, or decoded frames (uint8 [N, H, W, 3] RGB, an array or a tensor).
Video = Union[str, np.ndarray, torch.Tensor]


class ArrayVideoReader(VideoReader):
    """A decoded clip held in memory, read like a video file (uint8 RGB ``[N, H, W, 3]``)."""

    def __init__(self, frames: Union[np.ndarray, torch.Tensor], name: str) -> None:
        super().__init__(name)
        frames = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ArgumentError(f'{name}: a decoded clip must be uint8 RGB frames [N, H, W, 3] with N >= 1, '
                                f'got shape {frames.shape}')
        self.frames = frames.astype(np.uint8, copy=False)

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.frames[np.asarray(indices, dtype=np.int64)]


def config_test_pipeline(model: nn.Module) -> List[dict]:
    """The test pipeline (``test_dataloader.dataset.pipeline``) of the config kept by
    :func:`~svitt_mm.apis.init_model`."""
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise ValueError('the model has no config: build it with svitt_mm.apis.init_model(config, checkpoint)')
    return list(cfg.test_dataloader.dataset.pipeline)


def build_steps(pipeline: Sequence[dict]) -> list:
    """The pipeline's transforms, built in svitt_mm's registry scope."""
    with DefaultScope.overwrite_default_scope('svitt_mm'):
        return [TRANSFORMS.build(step) for step in pipeline]


class VideoItems(Dataset):
    """``videos`` through a test pipeline, one packed item per video.

    Item ``i`` is ``(i, packed item, None)``, or ``(i, None, reason)`` when the video cannot be decoded.
    ``fields(i)`` gives the other inputs the pipeline's text steps and packing need (captions, or a
    question and answers). A decoded clip skips the pipeline's ``OpenVideo`` step.
    """

    def __init__(self, videos: Sequence[Video], pipeline: Sequence[dict],
                 fields: Callable[[int], dict]) -> None:
        self.videos = list(videos)
        self.steps = build_steps(pipeline)
        self.fields = fields

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> Tuple[int, Optional[dict], Optional[str]]:
        video = self.videos[index]
        results = dict(self.fields(index), sample_idx=index)
        steps = self.steps
        if isinstance(video, str):
            results['video_path'] = video
        else:
            reader = ArrayVideoReader(video, f'clip {index}')
            results.update(video_path=reader.path, video_reader=reader, total_frames=len(reader))
            steps = [step for step in steps if not isinstance(step, OpenVideo)]
        try:
            for step in steps:
                results = step(results)
        except VideoDecodeError as error:
            return index, None, error.reason
        return index, results, None


def tokenize_texts(pipeline: Sequence[dict], texts: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``texts`` cleaned and tokenised by the pipeline's caption steps -> ``(ids, mask)`` LongTensors
    ``[M, L]``. Raises ``ValueError`` when the pipeline tokenises no captions (e.g. a QA pipeline)."""
    steps = [step for step in build_steps(pipeline)
             if isinstance(step, (CleanCaptions, TokenizeCaptions)) and not isinstance(step, TokenizeQA)]
    if not any(isinstance(step, TokenizeCaptions) for step in steps):
        raise ValueError('the config\'s test pipeline has no TokenizeCaptions step: is this a retrieval model?')
    results = dict(captions=list(texts))
    for step in steps:
        results = step(results)
    return torch.as_tensor(results['text_ids']).long(), torch.as_tensor(results['text_mask']).long()


def model_batch(model: nn.Module, items: Sequence[dict]) -> dict:
    """Dataset items (``inputs`` and ``data_samples`` each) as the model's data preprocessor outputs them
    in evaluation."""
    return model.data_preprocessor(dict(inputs=[item['inputs'] for item in items],
                                        data_samples=[item['data_samples'] for item in items]), False)
