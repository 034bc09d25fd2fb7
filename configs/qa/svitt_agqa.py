# Video QA on AGQA 2.0 (balanced) over Charades videos: 5 epochs with a quarter-epoch warm-up; there is
# no separate validation split, the test split validates (as in SViTT).
#   python tools/train.py configs/qa/svitt_agqa.py
_base_ = ['../_base_/qa_finetune.py']

anno = 'data/agqa/anno'
videos = 'data/agqa/videos'  # the Charades videos (480p), e.g. a link to data/charades/videos
answer_list = f'{anno}/agqa_answer_list.json'
max_epochs = 5
warmup_epochs = 0.25

model = dict(answer_list=answer_list)
train_dataloader = dict(dataset=dict(ann_file=f'{anno}/agqa_train_balanced.json', media_root=videos,
                                     answer_list=answer_list))
val_dataloader = dict(dataset=dict(ann_file=f'{anno}/agqa_test_balanced.json', media_root=videos,
                                   answer_list=answer_list))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.1, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'agqa_train_balanced.json: see docs/datasets.md#agqa',
    'val_dataloader.dataset.ann_file': 'agqa_test_balanced.json: see docs/datasets.md#agqa',
    'model.answer_list': 'agqa_answer_list.json: see docs/datasets.md#agqa',
    'train_dataloader.dataset.media_root': 'Charades videos: see docs/datasets.md#agqa',
}
