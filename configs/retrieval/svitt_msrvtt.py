# Text-video retrieval on MSR-VTT: fine-tune on the 9k training split, test on 1k-A (text length 64).
#   python tools/train.py configs/retrieval/svitt_msrvtt.py
_base_ = ['../_base_/retrieval_finetune.py']  # stated before the import (classic config)
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

train_pipeline, test_pipeline = retrieval_pipelines(
    num_frames=4, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=64,
    num_test_clips=3)
train_dataloader = dict(dataset=dict(ann_file='data/msrvtt/anno/msrvtt_ret_train9k.json',
                                     media_root='data/msrvtt/videos', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(ann_file='data/msrvtt/anno/msrvtt_ret_test1k.json',
                                   media_root='data/msrvtt/videos', pipeline=test_pipeline))
test_dataloader = val_dataloader

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'msrvtt_ret_train9k.json: see docs/datasets.md#msr-vtt',
    'train_dataloader.dataset.media_root': 'MSR-VTT videos: see docs/datasets.md#msr-vtt',
    'val_dataloader.dataset.ann_file': 'msrvtt_ret_test1k.json: see docs/datasets.md#msr-vtt',
    'val_dataloader.dataset.media_root': 'MSR-VTT videos: see docs/datasets.md#msr-vtt',
    'test_dataloader.dataset.ann_file': 'msrvtt_ret_test1k.json: see docs/datasets.md#msr-vtt',
    'test_dataloader.dataset.media_root': 'MSR-VTT videos: see docs/datasets.md#msr-vtt',
}
