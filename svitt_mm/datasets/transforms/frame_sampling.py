"""Choose which frames of a video make up its clips (segment-based sampling)."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS
from svitt_mm.utils.arg_checks import ArgumentError, check_arguments, int_at_least

SAMPLING_MODES = ('rand', 'middle')


def segment_bounds(vlen: int, num_segments: int) -> Tuple[np.ndarray, np.ndarray]:
    """Split frames ``[0, vlen)`` into ``num_segments`` near-equal integer segments.

    Returns ``(start, end)``, int64 arrays ``[num_segments]``; segment ``i`` holds the frames
    ``start[i] .. end[i] - 1``. With ``vlen >= num_segments`` the segments partition the video (disjoint,
    each at least one frame); with fewer frames, neighbouring segments share a frame, so frames repeat
    but every segment still holds at least one valid frame.
    """
    if vlen < 1:
        raise ValueError(f'segment_bounds: the video has no frames (vlen={vlen})')
    if num_segments < 1:
        raise ValueError(f'segment_bounds: num_segments must be >= 1, got {num_segments}')
    i = np.arange(num_segments, dtype=np.int64)
    start = i * vlen // num_segments
    end = np.maximum((i + 1) * vlen // num_segments, start + 1)
    return start, end


def sample_frame_indices(vlen: int, num_frames: int, num_clips: int = 1, sampling: str = 'rand',
                         rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Frame indices of ``num_clips`` clips of ``num_frames`` frames each.

    ``[0, vlen)`` is split into ``num_clips * num_frames`` equal segments (:func:`segment_bounds`) and
    one frame is taken per segment: ``'rand'`` draws it uniformly from the segment (first and last frame
    included), ``'middle'`` takes the frame containing the segment's midpoint, ``(start + end) // 2``.
    Clip ``k`` is made of the consecutive segments ``k * num_frames .. (k + 1) * num_frames - 1``, so the
    clips tile the video in order.

    Args:
        vlen: number of frames in the video (>= 1).
        num_frames: frames per clip (T).
        num_clips: clips per video (K).
        sampling: ``'rand'`` or ``'middle'``.
        rng: generator for ``'rand'``; ``None`` uses NumPy's global state (seeded per dataloader worker
            by MMEngine).

    Returns:
        int64 array ``[K, T]``, non-decreasing along the flattened order, all in ``[0, vlen)``.
    """
    if sampling not in SAMPLING_MODES:
        raise ValueError(f'sample_frame_indices: sampling must be one of {SAMPLING_MODES}, '
                         f'got {sampling!r}')
    if num_frames < 1 or num_clips < 1:
        raise ValueError(f'sample_frame_indices: num_frames and num_clips must be >= 1, got '
                         f'num_frames={num_frames}, num_clips={num_clips}')
    start, end = segment_bounds(vlen, num_clips * num_frames)
    if sampling == 'middle':
        index = (start + end) // 2
    else:
        uniform = (np.random if rng is None else rng).random(start.shape[0])
        index = start + np.floor(uniform * (end - start)).astype(np.int64)
    return index.reshape(num_clips, num_frames)


@TRANSFORMS.register_module()
class SampleFrames(BaseTransform):
    """Pick the frames to decode.

    Short videos (fewer than ``K * T`` frames, down to a single frame) are not an error: neighbouring
    segments share frames (see :func:`segment_bounds`), so frames repeat in order, e.g. a 3-frame video
    sampled to 8 frames with ``'middle'`` gives ``[0, 0, 0, 1, 1, 1, 2, 2]``.

    Required keys: ``total_frames`` (set by :class:`OpenVideo`).
    Added keys: ``frame_inds`` (int64 ``[K * T]``, clip-major), ``num_clips`` (K), ``clip_len`` (T).

    Args:
        num_frames: frames per clip (T).
        num_clips: clips per video (K); test-time multi-clip sampling spreads ``K * T`` frames over the
            whole video and groups them into K clips of consecutive samples.
        sampling: ``'rand'`` (training) or ``'middle'`` (deterministic, evaluation).
    """

    argument_checks = dict(num_frames=int_at_least(1), num_clips=int_at_least(1))

    def __init__(self, num_frames: int, num_clips: int = 1, sampling: str = 'rand') -> None:
        if sampling not in SAMPLING_MODES:
            raise ArgumentError(f'SampleFrames: sampling must be one of {SAMPLING_MODES}, got {sampling!r}')
        check_arguments(self, num_frames=num_frames, num_clips=num_clips)
        self.num_frames = num_frames
        self.num_clips = num_clips
        self.sampling = sampling

    def transform(self, results: Dict) -> Dict:
        if 'total_frames' not in results:
            raise KeyError('SampleFrames needs results["total_frames"]; put OpenVideo before it in the '
                           'pipeline')
        index = sample_frame_indices(results['total_frames'], self.num_frames, self.num_clips,
                                     self.sampling)
        results['frame_inds'] = index.reshape(-1)
        results['num_clips'] = self.num_clips
        results['clip_len'] = self.num_frames
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_frames={self.num_frames}, num_clips={self.num_clips}, '
                f'sampling={self.sampling!r})')
