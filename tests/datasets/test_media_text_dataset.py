"""MediaTextDataset, the base of the video-text, image-text and QA datasets: MMEngine's data_root and
data_prefix place the annotation file and the media folder; media_root is the same setting by its old name."""
import json

import pytest

from svitt_mm.datasets import ImageTextDataset, VideoQADataset, VideoTextDataset
from svitt_mm.testing import write_gray_video
from svitt_mm.testing.broken_images import write_image


@pytest.fixture
def root(tmp_path):
    write_gray_video(str(tmp_path / 'videos' / 'a.mp4'), 2)
    write_image(str(tmp_path / 'images' / 'a.png'))
    (tmp_path / 'anno').mkdir()
    (tmp_path / 'anno' / 'videos.json').write_text(json.dumps([{'video': 'a.mp4', 'caption': 'x'}]))
    (tmp_path / 'anno' / 'images.json').write_text(json.dumps([{'image': 'a.png', 'caption': 'x'}]))
    (tmp_path / 'anno' / 'qa.json').write_text(json.dumps(
        [{'video': 'a.mp4', 'question': 'q?', 'answer': 'left', 'question_id': 0}]))
    (tmp_path / 'anno' / 'answers.json').write_text(json.dumps(['left', 'right']))
    return tmp_path


@pytest.mark.parametrize('cls, ann, key, folder', [
    (VideoTextDataset, 'anno/videos.json', 'video_path', 'videos'),
    (ImageTextDataset, 'anno/images.json', 'img_path', 'images'),
    (VideoQADataset, 'anno/qa.json', 'video_path', 'videos'),
])
def test_data_prefix_and_media_root_are_one_setting(root, cls, ann, key, folder):
    by_prefix = cls(ann, data_root=str(root), data_prefix={key: folder})
    by_media_root = cls(ann, media_root=folder, data_root=str(root))
    absolute = cls(str(root / ann), media_root=str(root / folder))
    for dataset in (by_prefix, by_media_root, absolute):
        assert dataset.ann_file == str(root / ann)
        assert dataset.media_root == str(root / folder) == dataset.data_prefix[key]
        assert dataset.get_data_info(0)[key] == str(root / folder / 'a.png' if key == 'img_path'
                                                    else root / folder / 'a.mp4')
    with pytest.raises(ValueError, match='name different media folders'):
        cls(ann, media_root='elsewhere', data_root=str(root), data_prefix={key: folder})


def test_qa_answer_list_is_joined_with_data_root(root):
    dataset = VideoQADataset('anno/qa.json', 'videos', data_root=str(root), answer_list='anno/answers.json')
    assert dataset.answer_list == ['left', 'right']
