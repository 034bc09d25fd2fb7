"""VideoQADataset: parsing and build-time validation of QA annotations and answer lists."""
import json
import re

import pytest

from svitt_mm.datasets import VideoQADataset, media_text_dataset
from svitt_mm.registry import DATASETS
from svitt_mm.utils.text import read_answer_list

ENTRIES = [
    {'video': 'a.mp4', 'question': 'what moves?', 'answer': 'circle', 'question_id': 0, 'type': 'what'},
    {'video': 'sub/b.mp4', 'question': 'which way?', 'answer': ['left', 'left', 'up'], 'question_id': 'q1'},
    {'video': 'a.mp4', 'question': 'does it grow?', 'answer': 'yes', 'question_id': 2, 'type': 'yes/no'},
]


def write(folder, entries, name='qa.json', answers=('circle', 'left', 'up', 'yes')):
    media = folder / 'media'
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get('video'), str) and entry['video']:
            (media / entry['video']).parent.mkdir(parents=True, exist_ok=True)
            (media / entry['video']).touch()
    path = folder / name
    path.write_text(json.dumps(entries) if not isinstance(entries, str) else entries)
    answer_path = folder / 'answers.json'
    answer_path.write_text(json.dumps(list(answers)))
    return str(path), str(media), str(answer_path)


def test_parses_entries(tmp_path):
    ann, media, answers = write(tmp_path, ENTRIES)
    dataset = DATASETS.build(dict(type='VideoQADataset', ann_file=ann, media_root=media,
                                  answer_list=answers))
    assert len(dataset) == 3 and dataset.answer_list == ['circle', 'left', 'up', 'yes']
    info = dataset.get_data_info(1)
    assert info['video_path'] == str(tmp_path / 'media' / 'sub' / 'b.mp4')
    assert info['question'] == 'which way?' and info['answers'] == ['left', 'left', 'up']
    assert info['question_id'] == 'q1' and info['question_type'] is None
    assert dataset.get_data_info(0)['answers'] == ['circle']
    assert dataset.get_data_info(2)['question_type'] == 'yes/no'


@pytest.mark.parametrize('entry, message', [
    ({'question': 'q?', 'answer': 'a', 'question_id': 9}, 'entry 1 has no "video" key'),
    ({'video': 'a.mp4', 'answer': 'a', 'question_id': 9}, 'entry 1 has no "question" key'),
    ({'video': 'a.mp4', 'question': 'q?', 'question_id': 9}, 'entry 1 has no "answer" key'),
    ({'video': 'a.mp4', 'question': 'q?', 'answer': 'a'}, 'entry 1 has no "question_id" key'),
    ({'video': 'a.mp4', 'question': ' ', 'answer': 'a', 'question_id': 9}, 'entry 1: "question" must'),
    ({'video': 'a.mp4', 'question': 'q?', 'answer': [], 'question_id': 9}, 'entry 1: "answer" must'),
    ({'video': 'a.mp4', 'question': 'q?', 'answer': ['a', 3], 'question_id': 9},
     r'entry 1: "answer\[1\]" must be a non-empty string, got 3'),
    ({'video': 'a.mp4', 'question': 'q?', 'answer': 'a', 'question_id': 0},
     '"question_id" 0 repeats entry 0'),
    ({'video': 'a.mp4', 'question': 'q?', 'answer': 'a', 'question_id': 1.5}, '"question_id" must be'),
    ({'video': 'a.mp4', 'question': 'q?', 'answer': 'a', 'question_id': 9, 'type': 4}, '"type" must'),
    ({'video': '../x.mp4', 'question': 'q?', 'answer': 'a', 'question_id': 9}, 'outside the media root'),
    ('not a dict', 'entry 1 must be an object'),
])
def test_bad_entries_name_file_index_and_key(tmp_path, entry, message):
    ann, media, _ = write(tmp_path, [ENTRIES[0], entry])
    with pytest.raises(ValueError, match=message) as error:
        VideoQADataset(ann, media)
    assert ann in str(error.value)


def test_missing_files(tmp_path, monkeypatch):
    ann, media, answers = write(tmp_path, ENTRIES)
    (tmp_path / 'media' / 'sub' / 'b.mp4').unlink()
    logged = []
    monkeypatch.setattr(media_text_dataset, 'print_log', lambda message, **kwargs: logged.append(message))
    # training: each missing file is named when the dataset is built, then skipped like broken media
    assert len(VideoQADataset(ann, media)) == 3
    assert len(logged) == 1 and re.search(r'qa.json: 1 of 2 video files not found; training skips them .*\n'
                                          r'  .*sub/b.mp4: file not found', logged[0])
    assert len(VideoQADataset(ann, media, check_media=False)) == 3 and len(logged) == 1
    (tmp_path / 'media' / 'a.mp4').unlink()  # none left: the media root must be wrong
    with pytest.raises(FileNotFoundError, match=r'qa.json: none of its 2 video files exists under media_root'):
        VideoQADataset(ann, media)
    with pytest.raises(FileNotFoundError, match='nope.json'):
        VideoQADataset(str(tmp_path / 'nope.json'), media)
    with pytest.raises(FileNotFoundError, match='missing_answers.json'):
        VideoQADataset(ann, media, check_media=False, answer_list=str(tmp_path / 'missing_answers.json'))


def test_malformed_annotation_file(tmp_path):
    ann, media, _ = write(tmp_path, '[{"video": ')
    with pytest.raises(ValueError, match='malformed JSON'):
        VideoQADataset(ann, media)
    ann, media, _ = write(tmp_path, '{"video": "a.mp4"}')
    with pytest.raises(ValueError, match='expected a JSON list'):
        VideoQADataset(ann, media)


@pytest.mark.parametrize('answers, message', [
    ([], 'the answer list is empty'),
    (['left', ''], "answer 1 must be a non-empty string, got ''"),
    (['left', 7], 'answer 1 must be a non-empty string, got 7'),
    (['left', 'up', 'left'], "answer 2 'left' repeats answer 0"),
])
def test_bad_answer_lists(tmp_path, answers, message):
    path = tmp_path / 'bad_answers.json'
    path.write_text(json.dumps(answers))
    with pytest.raises(ValueError, match=message) as error:
        read_answer_list(str(path))
    assert str(path) in str(error.value)
    ann, media, _ = write(tmp_path, ENTRIES)
    with pytest.raises(ValueError, match=message):
        VideoQADataset(ann, media, answer_list=str(path))
