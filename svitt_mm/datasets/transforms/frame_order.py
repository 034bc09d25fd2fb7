"""Reorder the frames of every clip (temporal probes: does a model use frame order at all?)."""
from __future__ import annotations

from typing import Callable, Dict

import numpy as np
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS

def _shuffled(clip_len: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(clip_len)
    if clip_len > 1 and np.array_equal(order, np.arange(clip_len)):
        order = np.roll(order, 1)
    return order


_ORDERS: Dict[str, Callable[[int, int], np.ndarray]] = {
    'none': lambda clip_len, seed: np.arange(clip_len),
    'reverse': lambda clip_len, seed: np.arange(clip_len)[::-1].copy(),
    'shuffle': _shuffled,
    'freeze': lambda clip_len, seed: np.full(clip_len, clip_len // 2),
}
FRAME_ORDER_MODES = tuple(_ORDERS)


def frame_permutation(mode: str, clip_len: int, seed: int = 0) -> np.ndarray:
    """Frame indices ``[clip_len]`` that reorder one clip.

    ``'none'``: ``0..T-1``; ``'reverse'``: ``T-1..0``; ``'shuffle'``: a fixed permutation drawn from
    ``seed`` (never the identity when ``T > 1``, so a shuffled probe always changes the order);
    ``'freeze'``: the middle frame ``T // 2`` repeated ``T`` times.
    """
    if mode not in _ORDERS:
        raise ValueError(f'ReorderFrames: mode={mode!r} is not one of {FRAME_ORDER_MODES}')
    if clip_len < 1:
        raise ValueError(f'ReorderFrames: clip_len={clip_len} must be >= 1')
    return _ORDERS[mode](clip_len, seed)


@TRANSFORMS.register_module()
class ReorderFrames(BaseTransform):
    """Reorder the frames within each clip, the same way for every clip and video.

    Put it right after :class:`DecodeVideoFrames`. Required keys: ``imgs`` (``[K * T, H, W, 3]``),
    ``num_clips`` (K) and ``clip_len`` (T), set by :class:`SampleFrames`. Modified keys: ``imgs`` and,
    when present, ``frame_inds`` (so they keep naming the frames shown). Added key: ``frame_order``.

    Args:
        mode: ``'none'``, ``'reverse'``, ``'shuffle'`` or ``'freeze'`` (see :func:`frame_permutation`).
        seed: seed of the ``'shuffle'`` permutation.
    """

    def __init__(self, mode: str = 'none', seed: int = 0) -> None:
        frame_permutation(mode, 1, seed)  # validates mode
        self.mode = mode
        self.seed = seed

    def transform(self, results: Dict) -> Dict:
        missing = [key for key in ('imgs', 'num_clips', 'clip_len') if key not in results]
        if missing:
            raise KeyError(f'ReorderFrames needs results{missing}; put it after SampleFrames and '
                           f'DecodeVideoFrames in the pipeline')
        num_clips, clip_len = int(results['num_clips']), int(results['clip_len'])
        imgs = np.asarray(results['imgs'])
        if len(imgs) != num_clips * clip_len:
            raise ValueError(f'ReorderFrames: got {len(imgs)} frames, expected num_clips * clip_len = '
                             f'{num_clips} * {clip_len}')
        order = frame_permutation(self.mode, clip_len, self.seed)
        index = (np.arange(num_clips)[:, None] * clip_len + order[None]).reshape(-1)  # per clip
        results['imgs'] = imgs[index]
        if 'frame_inds' in results:
            results['frame_inds'] = np.asarray(results['frame_inds'])[index]
        results['frame_order'] = order
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(mode={self.mode!r}, seed={self.seed})'
