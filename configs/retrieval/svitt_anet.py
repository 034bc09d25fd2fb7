# Paragraph-to-video retrieval on ActivityNet Captions: a video's captions joined into one paragraph
# (text length 64); testing on val_1 (the usual split for this task).
#   python tools/train.py configs/retrieval/svitt_anet.py
_base_ = ['../_base_/retrieval_finetune.py']  # stated before the import (classic config)
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

train_pipeline, test_pipeline = retrieval_pipelines(
    num_frames=4, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=64,
    num_test_clips=3)
train_dataloader = dict(dataset=dict(ann_file='data/anet/anno/anet_ret_train.json',
                                     media_root='data/anet/videos', is_paragraph=True,
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(ann_file='data/anet/anno/anet_ret_val_1.json',
                                   media_root='data/anet/videos', is_paragraph=True,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'anet_ret_train.json: see docs/datasets.md#activitynet-captions',
    'train_dataloader.dataset.media_root': 'ActivityNet videos: see docs/datasets.md#activitynet-captions',
    'val_dataloader.dataset.ann_file': 'anet_ret_val_1.json: see docs/datasets.md#activitynet-captions',
    'val_dataloader.dataset.media_root': 'ActivityNet videos: see docs/datasets.md#activitynet-captions',
    'test_dataloader.dataset.ann_file': 'anet_ret_val_1.json: see docs/datasets.md#activitynet-captions',
    'test_dataloader.dataset.media_root': 'ActivityNet videos: see docs/datasets.md#activitynet-captions',
}
