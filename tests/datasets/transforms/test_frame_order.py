"""ReorderFrames: exact frame indices per mode, per clip when a sample holds several clips, and readable
errors."""
import numpy as np
import pytest

from svitt_mm.datasets.transforms import FRAME_ORDER_MODES, ReorderFrames, frame_permutation
from svitt_mm.registry import TRANSFORMS
from svitt_mm.apis import register_all_modules


def numbered_frames(num_clips, clip_len):
    """Frame i is filled with the value i, so the output names the input frames it holds."""
    count = num_clips * clip_len
    imgs = np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 4, 5, 3)).copy()
    return dict(imgs=imgs, num_clips=num_clips, clip_len=clip_len, frame_inds=np.arange(count) * 10 + 7)


def shown(results):
    return results['imgs'][:, 0, 0, 0].tolist()


def test_permutations():
    assert FRAME_ORDER_MODES == ('none', 'reverse', 'shuffle', 'freeze')
    assert frame_permutation('none', 4).tolist() == [0, 1, 2, 3]
    assert frame_permutation('reverse', 4).tolist() == [3, 2, 1, 0]
    assert frame_permutation('freeze', 4).tolist() == [2, 2, 2, 2]
    assert frame_permutation('freeze', 5).tolist() == [2] * 5
    for length in (2, 3, 4, 8):
        for seed in range(20):
            order = frame_permutation('shuffle', length, seed)
            assert sorted(order.tolist()) == list(range(length))
            assert order.tolist() != list(range(length))  # a shuffle always changes the order
    assert frame_permutation('shuffle', 8, 3).tolist() == frame_permutation('shuffle', 8, 3).tolist()
    assert frame_permutation('shuffle', 8, 3).tolist() != frame_permutation('shuffle', 8, 4).tolist()


@pytest.mark.parametrize('mode, expected', [
    ('none', [0, 1, 2, 3, 4, 5]),
    ('reverse', [2, 1, 0, 5, 4, 3]),
    ('freeze', [1, 1, 1, 4, 4, 4]),
])
def test_reorders_within_each_clip(mode, expected):
    register_all_modules()
    out = TRANSFORMS.build(dict(type='ReorderFrames', mode=mode))(numbered_frames(2, 3))
    assert shown(out) == expected
    assert out['frame_inds'].tolist() == [10 * i + 7 for i in expected]


def test_shuffle_uses_one_permutation_per_clip():
    order = frame_permutation('shuffle', 4, seed=5).tolist()
    out = ReorderFrames('shuffle', seed=5)(numbered_frames(3, 4))
    assert shown(out) == order + [4 + i for i in order] + [8 + i for i in order]
    assert out['frame_order'].tolist() == order


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="mode='backwards'"):
        ReorderFrames('backwards')
    with pytest.raises(KeyError, match='num_clips'):
        ReorderFrames('reverse')(dict(imgs=np.zeros((4, 2, 2, 3)), clip_len=4))
    with pytest.raises(ValueError, match='expected num_clips'):
        ReorderFrames('reverse')(dict(imgs=np.zeros((5, 2, 2, 3)), num_clips=1, clip_len=4))
