"""Spatial augmentation of frame clips: one random draw per clip, applied identically to every frame.

All transforms read and write ``results['imgs']`` (uint8 ``[N, H, W, 3]``, N = K * T frames) and update
``results['img_shape']`` to ``(H, W)``. Drawing once per clip (not per frame) keeps the motion intact; a
per-frame crop would add jitter that a temporal model would have to learn to ignore.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS
from svitt_mm.utils.arg_checks import ArgumentError

Size = Union[int, Sequence[int]]


def _as_hw(size: Size, owner: str) -> Tuple[int, int]:
    """``size`` as ``(height, width)``; an int means a square."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and s > 0 for s in hw):
        raise ArgumentError(f'{owner}: size must be a positive int or (height, width), got {size!r}')
    return hw


def _check_interpolation(interpolation: str, owner: str) -> str:
    if interpolation not in cv2_interp_codes:
        raise ArgumentError(f'{owner}: interpolation must be one of {sorted(cv2_interp_codes)}, '
                            f'got {interpolation!r}')
    return interpolation


def resize_frames(imgs: np.ndarray, hw: Tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize every frame of ``imgs`` ``[N, H, W, C]`` to ``hw = (height, width)`` -> ``[N, h, w, C]``."""
    height, width = hw
    return np.stack([mmcv.imresize(frame, (width, height), interpolation=interpolation)
                     for frame in imgs])


def random_resized_crop_box(height: int, width: int, scale: Tuple[float, float],
                            ratio: Tuple[float, float], rng=np.random,
                            max_attempts: int = 10) -> Tuple[int, int, int, int]:
    """Random crop box of a ``height x width`` frame, as inclusive ``(x1, y1, x2, y2)``.

    The box covers a random ``scale`` fraction of the area with a log-uniform aspect ``ratio``
    (width / height); after ``max_attempts`` misses, it is the largest centred box whose aspect ratio is
    clamped into ``ratio``. ``rng`` is a ``np.random.RandomState`` or the ``np.random`` module (whose
    global state MMEngine seeds per dataloader worker).
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(max_attempts):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            x1 = int(rng.randint(0, width - w + 1))
            y1 = int(rng.randint(0, height - h + 1))
            return x1, y1, x1 + w - 1, y1 + h - 1
    w, h = width, height
    if width / height < ratio[0]:  # frame too tall for the ratio range: full width
        h = min(height, int(round(width / ratio[0])))
    elif width / height > ratio[1]:  # too wide: full height
        w = min(width, int(round(height * ratio[1])))
    x1, y1 = (width - w) // 2, (height - h) // 2
    return x1, y1, x1 + w - 1, y1 + h - 1


@TRANSFORMS.register_module()
class ClipRandomResizedCrop(BaseTransform):
    """Crop one random box (same for all frames) and resize it to ``size``.

    Args:
        size: output ``(height, width)`` or an int for a square.
        scale: range of the crop's share of the frame area.
        ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        interpolation: an ``mmcv.imresize`` interpolation (``'bicubic'`` as in SViTT).
    """

    def __init__(self, size: Size, scale: Tuple[float, float] = (0.5, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = 'bicubic') -> None:
        self.size = _as_hw(size, type(self).__name__)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ArgumentError(f'{type(self).__name__}: scale must satisfy 0 < min <= max <= 1, '
                                f'got {scale!r}')
        if not 0 < ratio[0] <= ratio[1]:
            raise ArgumentError(f'{type(self).__name__}: ratio must satisfy 0 < min <= max, got {ratio!r}')
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = _check_interpolation(interpolation, type(self).__name__)

    def transform(self, results: Dict) -> Dict:
        imgs = results['imgs']
        box = np.array(random_resized_crop_box(imgs.shape[1], imgs.shape[2], self.scale, self.ratio))
        cropped = [mmcv.imcrop(frame, box) for frame in imgs]
        results['imgs'] = resize_frames(np.stack(cropped), self.size, self.interpolation)
        results['crop_bbox'] = box
        results['img_shape'] = self.size
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class ClipFlip(BaseTransform):
    """Flip all frames of the clip horizontally with probability ``prob`` (one draw per clip).

    Flipping swaps left and right, so it corrupts captions that say "left"/"right" (e.g. SSv2, or the
    built-in temporal-shapes demo: "moves left" would become a video that moves right). Leave it out of
    pipelines for such data.

    Added key: ``flip`` (bool).
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ArgumentError(f'ClipFlip: prob must be in [0, 1], got {prob!r}')
        self.prob = prob

    def transform(self, results: Dict) -> Dict:
        flip = bool(np.random.rand() < self.prob)
        if flip:
            results['imgs'] = np.stack([mmcv.imflip(frame, 'horizontal') for frame in results['imgs']])
        results['flip'] = flip
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class ClipResize(BaseTransform):
    """Resize all frames.

    Args:
        size: with ``keep_ratio=False``, the output ``(height, width)`` (an int: a square; SViTT's test
            transform, which does not preserve the aspect ratio); with ``keep_ratio=True``, an int: the
            length of the shorter side after resizing.
        keep_ratio: keep the aspect ratio (shorter side = ``size``).
        interpolation: an ``mmcv.imresize`` interpolation.
    """

    def __init__(self, size: Size, keep_ratio: bool = False, interpolation: str = 'bicubic') -> None:
        if keep_ratio and not isinstance(size, int):
            raise ArgumentError(f'ClipResize: keep_ratio=True needs an int size (the shorter side), '
                                f'got {size!r}')
        self.size = size if keep_ratio else _as_hw(size, type(self).__name__)
        self.keep_ratio = keep_ratio
        self.interpolation = _check_interpolation(interpolation, type(self).__name__)

    def output_hw(self, height: int, width: int) -> Tuple[int, int]:
        """Output ``(height, width)`` for input frames of ``height x width``."""
        if not self.keep_ratio:
            return self.size
        scale = self.size / min(height, width)
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))

    def transform(self, results: Dict) -> Dict:
        imgs = results['imgs']
        hw = self.output_hw(imgs.shape[1], imgs.shape[2])
        results['imgs'] = resize_frames(imgs, hw, self.interpolation)
        results['img_shape'] = hw
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r})')
