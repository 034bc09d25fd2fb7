# The dense demo (dense_demo.py) on batches of caption twins (each caption with its time-reversed twin,
# CaptionTwinBatchSampler), with the relative-position tables learning 30x faster, for 150 epochs (5,400
# steps, about 45 minutes on 2 CPU cores). After 100 epochs it fits its training clips past the order-blind
# limit but still does not use frame order on the test split (docs/analysis.md).
#   python tools/train.py configs/demo/dense_twins_long_demo.py
_base_ = ['dense_demo.py']

max_epochs = 150
train_dataloader = dict(
    drop_last=False,  # the batch sampler drops the incomplete batch itself
    batch_sampler=dict(type='CaptionTwinBatchSampler',
                       swap_words=[('left', 'right'), ('up', 'down'), ('grows', 'shrinks')]),
)
# The tables start at zero and are the encoder's only source of position (no absolute embedding).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'relative_position_bias': dict(lr_mult=30, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=25, max_keep_ckpts=2))
