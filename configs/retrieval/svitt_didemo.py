# Paragraph-to-video retrieval on DiDeMo: the sentences of a video are joined into one paragraph
# (text length 64); validation on the val split, testing on the test split.
#   python tools/train.py configs/retrieval/svitt_didemo.py
_base_ = ['../_base_/retrieval_finetune.py']  # stated before the import (classic config)
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

train_pipeline, test_pipeline = retrieval_pipelines(
    num_frames=4, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=64,
    num_test_clips=3)
train_dataloader = dict(dataset=dict(ann_file='data/didemo/anno/didemo_ret_train.json',
                                     media_root='data/didemo/videos', is_paragraph=True,
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(ann_file='data/didemo/anno/didemo_ret_val.json',
                                   media_root='data/didemo/videos', is_paragraph=True,
                                   pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(ann_file='data/didemo/anno/didemo_ret_test.json',
                                    media_root='data/didemo/videos', is_paragraph=True,
                                    pipeline=test_pipeline))

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'didemo_ret_train.json: see docs/datasets.md#didemo',
    'train_dataloader.dataset.media_root': 'DiDeMo videos: see docs/datasets.md#didemo',
    'val_dataloader.dataset.ann_file': 'didemo_ret_val.json: see docs/datasets.md#didemo',
    'val_dataloader.dataset.media_root': 'DiDeMo videos: see docs/datasets.md#didemo',
    'test_dataloader.dataset.ann_file': 'didemo_ret_test.json: see docs/datasets.md#didemo',
    'test_dataloader.dataset.media_root': 'DiDeMo videos: see docs/datasets.md#didemo',
}
