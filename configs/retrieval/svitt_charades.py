# Script-to-video retrieval on Charades: the video's script is the caption (text length 48).
#   python tools/train.py configs/retrieval/svitt_charades.py
_base_ = ['../_base_/retrieval_finetune.py']  # stated before the import (classic config)
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

train_pipeline, test_pipeline = retrieval_pipelines(
    num_frames=4, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=48,
    num_test_clips=3)
train_dataloader = dict(dataset=dict(ann_file='data/charades/anno/charades_script_train.json',
                                     media_root='data/charades/videos', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(ann_file='data/charades/anno/charades_script_test.json',
                                   media_root='data/charades/videos', pipeline=test_pipeline))
test_dataloader = val_dataloader

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'charades_script_train.json: see docs/datasets.md#charades',
    'train_dataloader.dataset.media_root': 'Charades videos: see docs/datasets.md#charades',
    'val_dataloader.dataset.ann_file': 'charades_script_test.json: see docs/datasets.md#charades',
    'val_dataloader.dataset.media_root': 'Charades videos: see docs/datasets.md#charades',
    'test_dataloader.dataset.ann_file': 'charades_script_test.json: see docs/datasets.md#charades',
    'test_dataloader.dataset.media_root': 'Charades videos: see docs/datasets.md#charades',
}
