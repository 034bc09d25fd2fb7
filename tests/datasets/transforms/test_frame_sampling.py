import numpy as np
import pytest

from svitt_mm.datasets.transforms.frame_sampling import SampleFrames, sample_frame_indices, segment_bounds


def test_segments_partition_the_video():
    start, end = segment_bounds(10, 4)
    assert start.tolist() == [0, 2, 5, 7]
    assert end.tolist() == [2, 5, 7, 10]


@pytest.mark.parametrize('vlen,num_frames,expected', [
    (16, 4, [2, 6, 10, 14]),
    (10, 4, [1, 3, 6, 8]),
    (4, 4, [0, 1, 2, 3]),
    (3, 8, [0, 0, 0, 1, 1, 1, 2, 2]),  # fewer frames than asked: frames repeat, in order
    (1, 4, [0, 0, 0, 0]),
])
def test_middle_sampling_exact_indices(vlen, num_frames, expected):
    assert sample_frame_indices(vlen, num_frames, sampling='middle').tolist() == [expected]


def test_middle_is_deterministic():
    first = sample_frame_indices(37, 5, 2, 'middle', rng=np.random.default_rng(0))
    second = sample_frame_indices(37, 5, 2, 'middle', rng=np.random.default_rng(1))
    np.testing.assert_array_equal(first, second)


def test_multi_clip_split_is_clip_major_and_tiles_the_video():
    index = sample_frame_indices(24, 4, num_clips=3, sampling='middle')
    assert index.tolist() == [[1, 3, 5, 7], [9, 11, 13, 15], [17, 19, 21, 23]]


def test_rand_reaches_both_ends_of_every_segment():
    rng = np.random.default_rng(0)
    draws = np.stack([sample_frame_indices(10, 4, rng=rng)[0] for _ in range(400)])
    start, end = segment_bounds(10, 4)
    assert draws.min(0).tolist() == start.tolist()
    assert draws.max(0).tolist() == (end - 1).tolist()  # the segment's last frame is reachable
    # every frame of the video is drawn at some point, each segment uniformly
    assert sorted(np.unique(draws).tolist()) == list(range(10))
    counts = np.bincount(draws[:, 1], minlength=10)[2:5]
    assert counts.min() > 400 / 3 * 0.7


def test_rand_never_leaves_the_video():
    rng = np.random.default_rng(1)
    for vlen in range(1, 40):
        for num_frames in (1, 3, 8, 12):
            for num_clips in (1, 3):
                index = sample_frame_indices(vlen, num_frames, num_clips, 'rand', rng=rng)
                assert index.shape == (num_clips, num_frames)
                assert index.min() >= 0 and index.max() < vlen
                assert np.all(np.diff(index.reshape(-1)) >= 0)
                if vlen >= num_frames * num_clips:  # disjoint segments: strictly increasing
                    assert np.all(np.diff(index.reshape(-1)) > 0)


def test_one_frame_video_and_short_video_with_rand():
    assert sample_frame_indices(1, 4, 2, 'rand').tolist() == [[0] * 4] * 2
    assert sample_frame_indices(3, 8, sampling='rand').tolist() == [[0, 0, 0, 1, 1, 1, 2, 2]]


def test_rand_uses_numpy_global_state_without_rng():
    np.random.seed(3)
    first = sample_frame_indices(100, 8)
    np.random.seed(3)
    np.testing.assert_array_equal(first, sample_frame_indices(100, 8))


def test_sample_frames_transform():
    results = SampleFrames(num_frames=4, num_clips=3, sampling='middle')(dict(total_frames=24))
    assert results['frame_inds'].tolist() == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]
    assert results['num_clips'] == 3 and results['clip_len'] == 4


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="sampling.*'fps2'"):
        SampleFrames(num_frames=4, sampling='fps2')
    with pytest.raises(ValueError, match='SampleFrames.num_frames: 0 must be an int >= 1'):
        SampleFrames(num_frames=0)
    with pytest.raises(ValueError, match='SampleFrames.num_clips: 1.5 must be an int >= 1'):
        SampleFrames(num_frames=4, num_clips=1.5)
    with pytest.raises(ValueError, match='vlen=0'):
        sample_frame_indices(0, 4)
    with pytest.raises(KeyError, match='OpenVideo'):
        SampleFrames(num_frames=4)(dict())
