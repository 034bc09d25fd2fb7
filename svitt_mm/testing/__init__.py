"""Helpers for svitt_mm's tests (and for users' tests of their own data and plugins): real broken media files,
and the conformance suite of block-sparse attention patterns and backends."""
from .attention_conformance import CASES as CONFORMANCE_CASES
from .attention_conformance import check_block_pattern
from .broken_videos import (BROKEN_KINDS, SHORT_KINDS, frame_indices_of, gray_level, write_broken_video,
                            write_gray_video)

__all__ = ['BROKEN_KINDS', 'CONFORMANCE_CASES', 'check_block_pattern', 'SHORT_KINDS', 'frame_indices_of', 'gray_level', 'write_broken_video',
           'write_gray_video']
