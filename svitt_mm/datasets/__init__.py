"""Datasets, data pipeline transforms and the built-in demo data of svitt_mm."""
from . import transforms  # noqa: F401  (registers the pipeline transforms and video_text_collate)
from .video_text_dataset import VideoTextDataset

__all__ = ['VideoTextDataset']
