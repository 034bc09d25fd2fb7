# Fine-tuning SViTT for text-video retrieval (reference doc, section 5.2): from the stage-1 pretraining
# checkpoint, 4 training frames, 12 test frames as 3 consecutive 4-frame clips whose matching scores are
# combined with logsumexp, lr 1e-5, 10 epochs without warm-up, cosine to lr x0.1, batch 32/32.
# Each configs/retrieval/*.py sets its data (annotation files, text length, flip, paragraph/positives).
_base_ = ['../svitt_4f.py']

lr = 1e-5
max_epochs = 10
min_lr_ratio = 0.1
num_test_clips = 3

model = dict(vision_encoder=dict(pretrained=None))  # every weight comes from `load_from`
load_from = 'work_dirs/svitt_webvid_4f/epoch_10.pth'

optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr_ratio, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
train_dataloader = dict(batch_size=32, dataset=dict(check_media=True))
val_dataloader = dict(batch_size=32)
test_dataloader = val_dataloader

required_finetune_inputs = {
    'load_from': 'a pretrained SViTT checkpoint: train configs/pretrain/svitt_webvid_4f.py (or point '
                 'load_from at a 4-frame SViTT checkpoint)',
}
