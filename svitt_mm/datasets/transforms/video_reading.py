"""Open videos and decode selected frames: decord first, PyAV when decord cannot open or decode a file.

decord (``num_threads=1``; one reader per dataloader worker) seeks to the requested frames. PyAV decodes
sequentially from the start, converts only the requested frames to RGB and stops after the last one, so
it is the slower reader; it is kept as the fallback because it decodes everything decord does and more
(e.g. AV1), and it raises on broken files instead of returning black frames (unlike OpenCV).

Every failure (missing, empty, truncated or garbage file, no video stream, undecodable frames) is raised
as one exception type, :class:`VideoDecodeError`, carrying the path and a one-line reason; datasets catch
it to skip (training) or report (evaluation) broken videos. Videos shorter than the requested clip are
not an error: :func:`~svitt_mm.datasets.transforms.frame_sampling.sample_frame_indices` repeats frames.
"""
from __future__ import annotations

import os
import re
import warnings
from typing import Dict, List, Optional, Type

import numpy as np
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS
from svitt_mm.utils.errors import UserError


class VideoDecodeError(UserError, RuntimeError):
    """A video file is missing or no reader could open or decode it.

    Attributes:
        path: the video file.
        reason: one line saying what went wrong (e.g. ``'empty file (0 bytes)'``).
    """

    def __init__(self, path: str, reason: str = '') -> None:
        # one argument: a message re-raised by a data-loader worker or MMEngine's registry
        super().__init__(f'{path}: {reason}' if reason else path)
        self.path = path
        self.reason = reason

    def __reduce__(self):  # keep (path, reason) when pickled (dataloader workers, all-gathers)
        return type(self), (self.path, self.reason)


# decord prefixes its messages with "[hh:mm:ss] /source/file.cc:123: " and appends a C++ stack trace.
_DECORD_PREFIX = re.compile(r'^\[\d\d:\d\d:\d\d\] \S+:\d+: (Check failed: )?')
MAX_REASON_CHARS = 200


def one_line(error: BaseException) -> str:
    """The first line of ``error``'s message without decord's location prefix, at most 200 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = _DECORD_PREFIX.sub('', lines[0]) if lines else type(error).__name__
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 3] + '...'


class VideoReader:
    """An open video: ``len(reader)`` frames, ``read(indices)`` -> uint8 RGB ``[N, H, W, 3]``.

    ``fallback`` names the backend to try when this one fails (``None``: no fallback).
    """

    fallback: Optional[str] = None

    def __init__(self, path: str) -> None:
        self.path = path

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (int ``[N]``, any order, repeats allowed) as uint8 ``[N, H, W, 3]``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle."""


class DecordVideoReader(VideoReader):
    """decord reader (bundles its own FFmpeg; random access with ``get_batch``)."""

    fallback = 'pyav'

    def __init__(self, path: str) -> None:
        super().__init__(path)
        import decord  # imported here so that a missing/broken decord falls back to PyAV
        self._reader = decord.VideoReader(path, num_threads=1)
        self._length = len(self._reader)
        if self._length < 1:
            raise VideoDecodeError(path, 'decord found no frames')

    def __len__(self) -> int:
        return self._length

    def read(self, indices: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        frames = self._reader.get_batch(unique.tolist()).asnumpy()
        return frames[inverse.reshape(-1)]

    def close(self) -> None:
        self._reader = None


class PyAVVideoReader(VideoReader):
    """PyAV reader. The frame count comes from the container, or from counting packets when the
    container does not store it; indices past the last decodable frame (containers may overcount)
    repeat the last decoded frame."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        import av
        self._container = av.open(path)
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(path, 'no video stream (e.g. an audio-only file)')
        stream = self._container.streams.video[0]
        if stream.codec_context is None:
            self._container.close()
            raise VideoDecodeError(path, 'PyAV has no decoder for the video stream (truncated file or '
                                         'unknown codec)')
        stream.codec_context.thread_count = 1  # one decoder thread per dataloader worker, like decord
        self._length = stream.frames or sum(1 for packet in self._container.demux(stream) if packet.size)
        if self._length < 1:
            self._container.close()
            raise VideoDecodeError(path, 'PyAV found no frames')

    def __len__(self) -> int:
        return self._length

    def read(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        wanted = set(indices.tolist())
        last_wanted = int(indices.max())
        self._container.seek(0)
        decoded: Dict[int, np.ndarray] = {}
        index, frame = -1, None
        for index, frame in enumerate(self._container.decode(video=0)):
            if index in wanted:
                decoded[index] = frame.to_ndarray(format='rgb24')
            if index >= last_wanted:
                break
        if frame is None:
            raise VideoDecodeError(self.path, 'PyAV decoded no frames')
        if index < last_wanted:
            tail = decoded[index] if index in decoded else frame.to_ndarray(format='rgb24')
            decoded.update({i: tail for i in wanted if i > index})
        return np.stack([decoded[i] for i in indices.tolist()])

    def close(self) -> None:
        self._container.close()


VIDEO_READERS: Dict[str, Type[VideoReader]] = {'decord': DecordVideoReader, 'pyav': PyAVVideoReader}


def check_backend(backend: str, owner: str) -> None:
    """Raise a ValueError naming ``owner`` if ``backend`` is not a known reader."""
    if backend not in VIDEO_READERS:
        raise ValueError(f'{owner}: backend must be one of {sorted(VIDEO_READERS)}, got {backend!r}')


def open_video(path: str, backend: str = 'decord') -> VideoReader:
    """Open ``path`` with ``backend``, falling back along ``VideoReader.fallback`` on failure (with a
    warning when the fallback succeeds).

    Raises:
        VideoDecodeError: ``path`` is missing or empty, or no reader could open it (the reason lists
            each reader's error on one line).
    """
    check_backend(backend, 'open_video')
    if not os.path.isfile(path):
        raise VideoDecodeError(path, 'file not found')
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, 'empty file (0 bytes)')
    errors: List[str] = []
    name: Optional[str] = backend
    while name is not None:
        reader_cls = VIDEO_READERS[name]
        try:
            reader = reader_cls(path)
        except Exception as err:  # decord raises RuntimeError or DECORDError, PyAV FFmpegError
            errors.append(f'{name}: {err.reason if isinstance(err, VideoDecodeError) else one_line(err)}')
            name = reader_cls.fallback
            continue
        if errors:
            warnings.warn(f'{path}: opened with {name} after {"; ".join(errors)}')
        return reader
    raise VideoDecodeError(path, f'cannot open ({"; ".join(errors)})')


def read_frames(reader: VideoReader, indices: np.ndarray) -> np.ndarray:
    """``reader.read(indices)``, retried with the fallback reader when decoding fails.

    Indices beyond the fallback reader's frame count are clamped to its last frame.

    Returns:
        uint8 ``[N, H, W, 3]`` RGB frames.

    Raises:
        VideoDecodeError: no reader could decode the frames.
    """
    try:
        return reader.read(indices)
    except Exception as err:
        reason = err.reason if isinstance(err, VideoDecodeError) else one_line(err)
        if reader.fallback is None:
            shown = np.asarray(indices).tolist()[:8] + (['...'] if len(indices) > 8 else [])
            raise VideoDecodeError(reader.path, f'cannot decode frames {shown} ({reason})') from err
        warnings.warn(f'{reader.path}: decoding with {type(reader).__name__} failed ({reason}); '
                      f'retrying with {reader.fallback}')
        reader.close()
        fallback = open_video(reader.path, reader.fallback)
        try:
            return read_frames(fallback, np.minimum(indices, len(fallback) - 1))
        finally:
            fallback.close()


def check_video(path: str, backend: str = 'decord') -> None:
    """Open ``path`` and decode its first and last frame (a truncated file fails on the last one).

    Raises:
        VideoDecodeError: the file is missing, empty or cannot be decoded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # a working fallback is not a problem here
        reader = open_video(path, backend)
        try:
            read_frames(reader, np.array([0, len(reader) - 1]))
        finally:
            reader.close()


@TRANSFORMS.register_module()
class OpenVideo(BaseTransform):
    """Open ``results['video_path']``.

    Added keys: ``video_reader`` (consumed by :class:`DecodeVideoFrames`), ``total_frames``.

    Args:
        backend: ``'decord'`` (falls back to PyAV when decord fails) or ``'pyav'``.
    """

    def __init__(self, backend: str = 'decord') -> None:
        check_backend(backend, 'OpenVideo')
        self.backend = backend

    def transform(self, results: Dict) -> Dict:
        reader = open_video(results['video_path'], self.backend)
        results['video_reader'] = reader
        results['total_frames'] = len(reader)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(backend={self.backend!r})'


@TRANSFORMS.register_module()
class DecodeVideoFrames(BaseTransform):
    """Decode the sampled frames and close the reader.

    Required keys: ``video_reader``, ``frame_inds`` (from :class:`SampleFrames`).
    Added keys: ``imgs`` (uint8 RGB ``[K * T, H, W, 3]``), ``original_shape``, ``img_shape`` (``(H, W)``).
    """

    def transform(self, results: Dict) -> Dict:
        for key in ('video_reader', 'frame_inds'):
            if key not in results:
                raise KeyError(f'DecodeVideoFrames needs results[{key!r}]; the pipeline must run '
                               f'OpenVideo and SampleFrames before it')
        reader = results.pop('video_reader')
        try:
            imgs = read_frames(reader, results['frame_inds'])
        finally:
            reader.close()
        results['imgs'] = imgs
        results['original_shape'] = results['img_shape'] = imgs.shape[1:3]
        return results
