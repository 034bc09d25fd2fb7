import json
import os
import time

import numpy as np
import pytest

from svitt_mm.datasets.demo.__main__ import main
from svitt_mm.datasets.demo.temporal_shapes import (COLORS, MOTIONS, SHAPES, Event, all_events,
                                                    build_temporal_shapes, render_clip, sample_clip_spec)
from svitt_mm.datasets.transforms.video_reading import open_video
from svitt_mm.datasets.video_text_dataset import VideoTextDataset

SMALL = dict(videos_per_caption=2, num_frames=8, size=32)


@pytest.fixture(scope='module')
def small_build(tmp_path_factory):
    out = tmp_path_factory.mktemp('shapes')
    start = time.perf_counter()
    paths = build_temporal_shapes(str(out), seed=0, **SMALL)
    return paths, time.perf_counter() - start


def decode_all(path, num_frames):
    return open_video(path, 'pyav').read(np.arange(num_frames))


def captions(ann_file):
    with open(ann_file) as f:
        return [entry['caption'] for entry in json.load(f)]


def test_small_build_is_fast_and_has_the_caption_set(small_build):
    paths, seconds = small_build
    assert seconds < 5.0
    expected = {f'a {color} {shape} {motion}' for shape in SHAPES for color in COLORS for motion in MOTIONS}
    test_captions = captions(paths['test'])
    assert len(test_captions) == len(set(test_captions)) == 72 and set(test_captions) == expected
    train_captions = captions(paths['train'])
    assert len(train_captions) == 144
    assert {caption: train_captions.count(caption) for caption in expected} == dict.fromkeys(expected, 2)
    dataset = VideoTextDataset(paths['test'], paths['media_root'], mode='eval')
    assert len(dataset) == 72


def test_colour_change_captions():
    events = all_events(color_changes=True)
    assert len({e.caption for e in events}) == 108
    assert Event('circle', 'changes', ('red', 'blue')).caption == 'a circle changes from red to blue'


def test_same_seed_same_frames_other_seed_other_frames(small_build, tmp_path):
    paths, _ = small_build
    again = build_temporal_shapes(str(tmp_path / 'again'), seed=0, **SMALL)
    other = build_temporal_shapes(str(tmp_path / 'other'), seed=1, **SMALL)
    for name in ('train/00000.mp4', 'train/00077.mp4', 'test/00071.mp4'):
        first = decode_all(os.path.join(paths['media_root'], name), 8)
        np.testing.assert_array_equal(first, decode_all(os.path.join(again['media_root'], name), 8))
        assert not np.array_equal(first, decode_all(os.path.join(other['media_root'], name), 8))


def test_complete_build_is_reused_and_changed_parameters_rebuild(tmp_path):
    params = dict(videos_per_caption=1, num_frames=4, size=16)
    paths = build_temporal_shapes(str(tmp_path), **params)
    stamp = os.path.getmtime(paths['train'])
    start = time.perf_counter()
    assert build_temporal_shapes(str(tmp_path), **params) == paths
    assert time.perf_counter() - start < 0.5 and os.path.getmtime(paths['train']) == stamp
    os.remove(os.path.join(paths['media_root'], 'test', '00003.mp4'))  # incomplete: rebuilt
    build_temporal_shapes(str(tmp_path), **params)
    assert os.path.isfile(os.path.join(paths['media_root'], 'test', '00003.mp4'))
    build_temporal_shapes(str(tmp_path), **dict(params, videos_per_caption=2))
    assert len(captions(paths['train'])) == 144


def test_reversed_clip_is_a_clip_of_the_reversed_event():
    for seed, event in enumerate(all_events(color_changes=True)):
        assert event.reversed().reversed() == event and event.reversed() != event
        spec = sample_clip_spec(event, np.random.default_rng(seed), size=32)
        reversed_spec = sample_clip_spec(event.reversed(), np.random.default_rng(seed), size=32)
        assert reversed_spec == spec.reversed(), event.caption  # same draws: the time-reversed clip
        np.testing.assert_array_equal(render_clip(reversed_spec, 8, 32), render_clip(spec, 8, 32)[::-1])
    assert Event('circle', 'moves left', ('red', 'red')).reversed().caption == 'a red circle moves right'


def shape_track(frames):
    """Per-frame (x centroid, y centroid, area) of the blue-ish pixels (backgrounds are grey-ish)."""
    frames = frames.astype(np.float64)
    weight = np.clip(frames[..., 2] - frames[..., :2].max(-1) - 50, 0, None)
    ys, xs = np.mgrid[0:frames.shape[1], 0:frames.shape[2]]
    total = weight.sum((1, 2))
    return np.stack([(weight * xs).sum((1, 2)) / total, (weight * ys).sum((1, 2)) / total,
                     (weight > 0).sum((1, 2))], axis=1)


@pytest.mark.parametrize('motion,reverse,column,sign', [
    ('moves left', 'moves right', 0, -1), ('moves up', 'moves down', 1, -1)])
def test_decoded_moves_follow_the_caption_and_reverse(small_build, motion, reverse, column, sign):
    paths, _ = small_build
    names = {caption: i for i, caption in enumerate(captions(paths['test']))}
    for shape in SHAPES:
        frames = decode_all(os.path.join(paths['media_root'], 'test',
                                         f'{names[f"a blue {shape} {motion}"]:05d}.mp4'), 8)
        track = shape_track(frames)[:, column]
        assert np.all(sign * np.diff(track) > 0.3)  # monotonic in the caption's direction
        reversed_track = shape_track(frames[::-1])[:, column]
        assert np.all(-sign * np.diff(reversed_track) > 0.3)  # the reversed clip moves the other way
        opposite = shape_track(decode_all(os.path.join(
            paths['media_root'], 'test', f'{names[f"a blue {shape} {reverse}"]:05d}.mp4'), 8))[:, column]
        assert np.all(-sign * np.diff(opposite) > 0.3)


def test_growth_and_shrinking(small_build):
    paths, _ = small_build
    names = {caption: i for i, caption in enumerate(captions(paths['test']))}
    for shape in SHAPES:
        grows = render_clip(sample_clip_spec(Event(shape, 'grows', ('blue', 'blue')),
                                             np.random.default_rng(0), 32), 8, 32)
        assert np.all(np.diff(shape_track(grows)[:, 2]) > 0)
        for motion, first, last in (('grows', 0, -1), ('shrinks', -1, 0)):
            video = os.path.join(paths['media_root'], 'test', f'{names[f"a blue {shape} {motion}"]:05d}.mp4')
            area = shape_track(decode_all(video, 8))[:, 2]
            assert area[last] > 2 * area[first]


def test_command_line(tmp_path, capsys):
    main([str(tmp_path / 'cli'), '--seed', '3', '--videos-per-caption', '1'])
    printed = capsys.readouterr().out
    assert str(tmp_path / 'cli' / 'train.json') in printed and 'media_root' in printed
    with open(tmp_path / 'cli' / 'manifest.json') as f:
        assert json.load(f)['params']['seed'] == 3


def test_bad_parameters():
    with pytest.raises(ValueError, match='size=33'):
        build_temporal_shapes('/nonexistent', size=33)


def test_qa_split_asks_what_the_caption_says(small_build):
    from svitt_mm.datasets import VideoQADataset
    from svitt_mm.datasets.demo.temporal_shapes import qa_answer_list
    paths, _ = small_build
    with open(paths['answer_list']) as f:
        assert json.load(f) == qa_answer_list() == ['left', 'right', 'up', 'down', 'grow', 'shrink']
    for split, per_caption in (('train', 2), ('test', 1)):
        with open(paths[split]) as f:
            video_captions = {entry['video']: entry['caption'] for entry in json.load(f)}
        dataset = VideoQADataset(paths[f'qa_{split}'], paths['media_root'], answer_list=paths['answer_list'])
        assert len(dataset) == 72 * per_caption == len(video_captions)
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            caption = video_captions[os.path.relpath(info['video_path'], paths['media_root'])]
            color, shape, motion = caption.split(' ', 3)[1:]
            assert info['question_id'] == index
            if motion.startswith('moves'):
                assert info['question'] == f'which way does the {color} {shape} move?'
                assert (info['answers'], info['question_type']) == ([motion.split()[1]], 'direction')
            else:
                assert info['question'] == f'does the {color} {shape} grow or shrink?'
                assert (info['answers'], info['question_type']) == ([motion[:-1]], 'size')


def test_qa_files_are_rewritten_only_when_changed_and_retrieval_files_untouched(tmp_path):
    params = dict(videos_per_caption=1, num_frames=4, size=16)
    paths = build_temporal_shapes(str(tmp_path), **params)
    stamps = {key: os.path.getmtime(paths[key]) for key in ('train', 'test', 'qa_train', 'answer_list')}
    with open(paths['train'], 'rb') as f:
        train_bytes = f.read()
    os.remove(paths['qa_test'])
    assert build_temporal_shapes(str(tmp_path), **params) == paths
    assert os.path.isfile(paths['qa_test'])  # a reused build gets its missing QA file back
    assert {key: os.path.getmtime(paths[key]) for key in stamps} == stamps
    with open(paths['train'], 'rb') as f:
        assert f.read() == train_bytes
    colour_qa = build_temporal_shapes(str(tmp_path / 'colours'), color_changes=True, **params)
    with open(colour_qa['qa_test']) as f:
        entries = json.load(f)
    changes = [e for e in entries if e['type'] == 'color']
    assert len(changes) == 36 and changes[0]['question'] == 'what color does the circle turn?'
    assert changes[0]['answer'] == 'green'  # circle from red to green: the colour at the end
