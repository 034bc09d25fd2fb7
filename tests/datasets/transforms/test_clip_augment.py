import mmcv
import numpy as np
import pytest

from svitt_mm.datasets.transforms.clip_augment import (ClipFlip, ClipRandomResizedCrop, ClipResize,
                                                       random_resized_crop_box)


def random_clip(num_frames=4, height=40, width=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def test_random_resized_crop_uses_one_box_for_all_frames():
    np.random.seed(0)
    clip = random_clip()
    results = ClipRandomResizedCrop(size=(24, 32))(dict(imgs=clip.copy()))
    out = results['imgs']
    assert out.shape == (4, 24, 32, 3) and out.dtype == np.uint8
    assert results['img_shape'] == (24, 32)
    x1, y1, x2, y2 = results['crop_bbox']
    for frame_in, frame_out in zip(clip, out):
        expected = mmcv.imresize(frame_in[y1:y2 + 1, x1:x2 + 1], (32, 24), interpolation='bicubic')
        np.testing.assert_array_equal(frame_out, expected)


def test_identical_frames_stay_identical():
    np.random.seed(1)
    clip = np.repeat(random_clip(num_frames=1), 6, axis=0)
    for transform in (ClipRandomResizedCrop(size=16), ClipFlip(prob=0.5), ClipResize(size=20)):
        for _ in range(5):
            out = transform(dict(imgs=clip.copy()))['imgs']
            assert all(np.array_equal(out[0], frame) for frame in out[1:])


def test_crop_boxes_respect_scale_and_ratio():
    rng = np.random.RandomState(0)
    areas, aspects = [], []
    for _ in range(300):
        x1, y1, x2, y2 = random_resized_crop_box(100, 120, (0.5, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= x1 <= x2 < 120 and 0 <= y1 <= y2 < 100
        w, h = x2 - x1 + 1, y2 - y1 + 1
        areas.append(w * h / (100 * 120))
        aspects.append(w / h)
    assert 0.48 <= min(areas) and max(areas) <= 1.0
    assert min(areas) < 0.55 and max(areas) > 0.9  # the whole scale range is used
    assert 0.73 <= min(aspects) and max(aspects) <= 1.36


def test_crop_box_falls_back_to_a_centred_crop():
    # a 10x100 strip cannot hold a square covering >= 90% of it: centred 10x10 box
    assert random_resized_crop_box(10, 100, (0.9, 1.0), (1.0, 1.0)) == (45, 0, 54, 9)


@pytest.mark.parametrize('prob,flipped', [(1.0, True), (0.0, False)])
def test_flip(prob, flipped):
    clip = random_clip()
    results = ClipFlip(prob=prob)(dict(imgs=clip.copy()))
    assert results['flip'] is flipped
    np.testing.assert_array_equal(results['imgs'], clip[:, :, ::-1] if flipped else clip)


def test_flip_decision_is_per_clip():
    np.random.seed(0)
    clip = random_clip(num_frames=8)
    outcomes = []
    for _ in range(40):
        out = ClipFlip(prob=0.5)(dict(imgs=clip.copy()))['imgs']
        per_frame = [np.array_equal(o, c[:, ::-1]) for o, c in zip(out, clip)]
        assert len(set(per_frame)) == 1
        outcomes.append(per_frame[0])
    assert 5 < sum(outcomes) < 35


def test_resize_exact_and_keep_ratio():
    clip = random_clip(height=32, width=48)
    out = ClipResize(size=(24, 40))(dict(imgs=clip))
    assert out['imgs'].shape == (4, 24, 40, 3) and out['img_shape'] == (24, 40)
    np.testing.assert_array_equal(out['imgs'][2], mmcv.imresize(clip[2], (40, 24), interpolation='bicubic'))
    kept = ClipResize(size=16, keep_ratio=True)(dict(imgs=clip))
    assert kept['imgs'].shape == (4, 16, 24, 3)
    flat = np.full((2, 30, 50, 3), 77, np.uint8)
    np.testing.assert_array_equal(ClipResize(size=12)(dict(imgs=flat))['imgs'], 77)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="interpolation.*'cubic'"):
        ClipResize(size=8, interpolation='cubic')
    with pytest.raises(ValueError, match='keep_ratio'):
        ClipResize(size=(8, 8), keep_ratio=True)
    with pytest.raises(ValueError, match='size'):
        ClipRandomResizedCrop(size=(8, 0))
    with pytest.raises(ValueError, match='scale'):
        ClipRandomResizedCrop(size=8, scale=(0.5, 1.5))
    with pytest.raises(ValueError, match='prob'):
        ClipFlip(prob=2)
