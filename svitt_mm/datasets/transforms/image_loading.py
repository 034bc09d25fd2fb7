"""Read a still image as a clip, so image-text corpora (CC3M) train through the video pipeline."""
from __future__ import annotations

import os
from typing import Dict

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS


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
        FileNotFoundError: the image file does not exist.
        ValueError: the file is not a decodable image.
    """

    def __init__(self, num_frames: int = 1) -> None:
        if num_frames < 1:
            raise ValueError(f'LoadImageAsClip: num_frames must be >= 1, got {num_frames}')
        self.num_frames = num_frames

    def transform(self, results: Dict) -> Dict:
        if 'img_path' not in results:
            raise KeyError('LoadImageAsClip needs results["img_path"] (set by ImageTextDataset)')
        path = results['img_path']
        if not os.path.isfile(path):
            raise FileNotFoundError(f'LoadImageAsClip: image file not found: {path}')
        # Read BGR and convert: mmcv's RGB read raises a bare cv2.error on undecodable files.
        image = mmcv.imread(path, flag='color')
        if image is None:
            raise ValueError(f'LoadImageAsClip: could not decode image {path}')
        image = mmcv.bgr2rgb(image)
        results['imgs'] = np.repeat(image[None], self.num_frames, axis=0)
        results['num_clips'] = 1
        results['clip_len'] = self.num_frames
        results['original_shape'] = results['img_shape'] = image.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_frames={self.num_frames})'
