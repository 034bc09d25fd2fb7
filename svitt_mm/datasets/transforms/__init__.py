"""Data pipeline transforms (registered in ``TRANSFORMS``) and the batch collate function."""
from .clip_augment import ClipFlip, ClipRandomResizedCrop, ClipResize
from .formatting import PackVideoQAInputs, PackVideoTextInputs, video_text_collate
from .frame_order import FRAME_ORDER_MODES, ReorderFrames, frame_permutation
from .frame_sampling import SampleFrames, sample_frame_indices, segment_bounds
from .image_loading import ImageDecodeError, LoadImageAsClip, read_image
from .text import CleanCaptions, TokenizeCaptions, TokenizeQA
from .video_reading import (DecodeVideoFrames, OpenVideo, VideoDecodeError, VideoReader, check_video,
                            open_video, read_frames)

__all__ = [
    'ClipFlip', 'ClipRandomResizedCrop', 'ClipResize', 'PackVideoTextInputs', 'video_text_collate',
    'FRAME_ORDER_MODES', 'ReorderFrames', 'frame_permutation',
    'SampleFrames', 'sample_frame_indices', 'segment_bounds', 'CleanCaptions', 'TokenizeCaptions',
    'DecodeVideoFrames', 'OpenVideo', 'VideoDecodeError',
    'VideoReader', 'check_video', 'open_video', 'read_frames', 'ImageDecodeError', 'LoadImageAsClip',
    'read_image',
    'PackVideoQAInputs', 'TokenizeQA',
]
