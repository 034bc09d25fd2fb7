"""Datasets, data pipeline transforms and the built-in demo data of svitt_mm."""
from . import transforms  # noqa: F401  (registers the pipeline transforms and video_text_collate)
from .broken_media import BrokenMediaError, BrokenMediaMixin
from .caption_twin_batch_sampler import CaptionTwinBatchSampler
from .image_text_dataset import ImageTextDataset
from .media_text_dataset import MediaTextDataset
from .source_homogeneous_batch_sampler import SourceHomogeneousBatchSampler
from .video_qa_dataset import VideoQADataset
from .video_text_dataset import VideoTextDataset

__all__ = ['BrokenMediaError', 'BrokenMediaMixin', 'CaptionTwinBatchSampler', 'MediaTextDataset',
           'VideoTextDataset', 'ImageTextDataset', 'SourceHomogeneousBatchSampler', 'VideoQADataset']
