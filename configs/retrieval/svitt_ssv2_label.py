# Text-to-video retrieval on Something-Something v2, label captions: the video's label with its objects
# filled in (e.g. "putting a cup on the table").
# Several videos per caption: see configs/_base_/ssv2_retrieval_finetune.py (no flip, positives by caption).
#   python tools/train.py configs/retrieval/svitt_ssv2_label.py
_base_ = ['../_base_/ssv2_retrieval_finetune.py']

train_dataloader = dict(dataset=dict(ann_file='data/ssv2/anno/ssv2_ret_label_train.json'))
val_dataloader = dict(dataset=dict(ann_file='data/ssv2/anno/ssv2_ret_label_val_small.json'))
test_dataloader = val_dataloader

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'ssv2_ret_label_train.json: see docs/datasets.md#ssv2',
    'train_dataloader.dataset.media_root': 'SSv2 videos: see docs/datasets.md#ssv2',
    'val_dataloader.dataset.ann_file': 'ssv2_ret_label_val_small.json: see docs/datasets.md#ssv2',
    'val_dataloader.dataset.media_root': 'SSv2 videos: see docs/datasets.md#ssv2',
    'test_dataloader.dataset.ann_file': 'ssv2_ret_label_val_small.json: see docs/datasets.md#ssv2',
    'test_dataloader.dataset.media_root': 'SSv2 videos: see docs/datasets.md#ssv2',
}
