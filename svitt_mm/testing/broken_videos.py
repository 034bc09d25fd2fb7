"""Write real broken and short video files (with PyAV) to test how readers and datasets handle them.

Kinds (:data:`BROKEN_KINDS`, every one must make the readers raise ``VideoDecodeError``):

* ``missing``: nothing is written;
* ``empty``: a 0-byte file;
* ``truncated``: a valid MP4 cut in half (the container index, written last, is lost);
* ``garbage``: random bytes with an ``.mp4`` name;
* ``no_video_stream``: a valid MP4 holding only an AAC audio stream. PyAV decodes every video codec it
  can write (AV1 included, which decord cannot), so a file no reader can decode is made this way.

Short kinds (:data:`SHORT_KINDS`, decodable; the frame sampler repeats frames): ``short`` (3 frames) and
``single_frame``.

Videos are 32 x 32 (decord 0.6.0 cannot decode frames narrower than 32 pixels), MPEG-4 part 2; frame ``i``
is uniformly gray at level :func:`gray_level` ``(i)``, so decoded frames can be identified.
"""
from __future__ import annotations

import os

import numpy as np

BROKEN_KINDS = ('missing', 'empty', 'truncated', 'garbage', 'no_video_stream')
SHORT_KINDS = {'short': 3, 'single_frame': 1}
SIZE = 32


def gray_level(index: int) -> int:
    """Gray level of frame ``index`` in videos written here (10, 40, 70, ...; at most 8 levels)."""
    return 10 + 30 * index


def frame_indices_of(frames: np.ndarray) -> list:
    """Recover frame indices from decoded uint8 ``[N, H, W, 3]`` frames of :func:`write_gray_video`."""
    return np.rint((frames.mean(axis=(1, 2, 3)) - 10) / 30).astype(int).tolist()


def write_gray_video(path: str, num_frames: int) -> str:
    """Write a ``num_frames``-frame (at most 8) gray-level MP4 to ``path``; returns ``path``."""
    from svitt_mm.datasets.demo.temporal_shapes import write_video

    if not 1 <= num_frames <= 8:
        raise ValueError(f'write_gray_video: num_frames must be in [1, 8], got {num_frames}')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_video(path, np.stack([np.full((SIZE, SIZE, 3), gray_level(i), np.uint8)
                                for i in range(num_frames)]))
    return path


def _write_missing(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


def _write_empty(path: str) -> None:
    open(path, 'wb').close()


def _write_truncated(path: str) -> None:
    write_gray_video(path, 6)
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def _write_garbage(path: str) -> None:
    with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _write_audio_only(path: str) -> None:
    import av

    with av.open(path, 'w', format='mp4') as container:
        stream = container.add_stream('aac', rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format='fltp', layout='mono')
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)


_WRITERS = {'missing': _write_missing, 'empty': _write_empty, 'truncated': _write_truncated,
            'garbage': _write_garbage, 'no_video_stream': _write_audio_only}


def write_broken_video(path: str, kind: str) -> str:
    """Make ``path`` a broken video of ``kind`` (one of :data:`BROKEN_KINDS`) or a short one (a key of
    :data:`SHORT_KINDS`); returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if kind in SHORT_KINDS:
        return write_gray_video(path, SHORT_KINDS[kind])
    if kind not in _WRITERS:
        raise ValueError(f'write_broken_video: kind must be one of {BROKEN_KINDS + tuple(SHORT_KINDS)}, '
                         f'got {kind!r}')
    _WRITERS[kind](path)
    return path
