"""Read a still image as a clip, so image-text corpora (CC3M) train through the video pipeline."""
from __future__ import annotations

import os
from typing import Dict

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS
from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.errors import UserError


class ImageDecodeError(UserError, ValueError):
    """An image file is missing or cannot be decoded.

    Attributes:
        path: the image file.
        reason: one line saying what went wrong (``'file not found'``, ``'empty file (0 bytes)'``,
            ``'not a decodable image'``).
    """

    def __init__(self, path: str, reason: str = '') -> None:
        # one argument: a message re-raised by a data-loader worker or MMEngine's registry
        super().__init__(f'{path}: {reason}' if reason else path)
        self.path = path
        self.reason = reason

    def __reduce__(self):  # keep (path, reason) when pickled (dataloader workers)
        return type(self), (self.path, self.reason)


def read_image(path: str) -> np.ndarray:
    """The image at ``path`` as uint8 RGB ``[H, W, 3]``.

    Raises:
        ImageDecodeError: the file is missing, empty or not a decodable image.
    """
    if not os.path.isfile(path):
        raise ImageDecodeError(path, 'file not found')
    if os.path.getsize(path) == 0:
        raise ImageDecodeError(path, 'empty file (0 bytes)')
    # Read BGR and convert: OpenCV returns None for most undecodable files, but raises cv2.error for some
    # (and mmcv's RGB read for all of them).
    try:
        image = mmcv.imread(path, flag='color')
    except Exception:
        image = None
    if image is None:
        raise ImageDecodeError(path, 'not a decodable image')
    return mmcv.bgr2rgb(image)


@TRANSFORMS.register_module()
class LoadImageAsClip(BaseTransform):
    """Read ``results['img_path']`` into a one-clip video of ``num_frames`` identical frames.

    Added keys: ``imgs`` (uint8 RGB ``[num_frames, H, W, 3]``), ``num_clips`` (1), ``clip_len``
    (``num_frames``), ``original_shape`` and ``img_shape`` (``(H, W)``); the clip transforms and
    :class:`PackVideoTextInputs` then treat it like a decoded video.

    Args:
        num_frames: frames of the clip. SViTT feeds images as 1-frame videos (the default); a batch must
            not mix clip lengths, see :class:`SourceHomogeneousBatchSampler`.

    Raises:
        ImageDecodeError: the image file does not exist or is not a decodable image.
    """

    def __init__(self, num_frames: int = 1) -> None:
        if num_frames < 1:
            raise ArgumentError(f'LoadImageAsClip: num_frames must be >= 1, got {num_frames}')
        self.num_frames = num_frames

    def transform(self, results: Dict) -> Dict:
        if 'img_path' not in results:
            raise KeyError('LoadImageAsClip needs results["img_path"] (set by ImageTextDataset)')
        image = read_image(results['img_path'])
        results['imgs'] = np.repeat(image[None], self.num_frames, axis=0)
        results['num_clips'] = 1
        results['clip_len'] = self.num_frames
        results['original_shape'] = results['img_shape'] = image.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_frames={self.num_frames})'
