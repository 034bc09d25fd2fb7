"""Helpers for svitt_mm's tests (and for users' tests of their own data): real broken media files."""
from .broken_videos import (BROKEN_KINDS, SHORT_KINDS, frame_indices_of, gray_level, write_broken_video,
                            write_gray_video)

__all__ = ['BROKEN_KINDS', 'SHORT_KINDS', 'frame_indices_of', 'gray_level', 'write_broken_video',
           'write_gray_video']
