# SViTT's temporal sparse expansion in one run: 10 epochs at 4 frames (video keep rate 0.7), then 10 at
# 8 frames (0.6), then 10 at 16 frames (0.5); one warm-up + cosine schedule over all 30 epochs.
#   python tools/train.py configs/svitt_curriculum_4_8_16f.py
# CurriculumHook switches the frame count of the train/val/test pipelines and the pruner keep rate at
# each stage; resuming mid-run lands in the right stage. The model starts as svitt_4f.py.
_base_ = ['svitt_4f.py']

epochs_per_stage = 10
max_epochs = 3 * epochs_per_stage
warmup_epochs = 1
min_lr_ratio = 0.01

# Relative position tables span the longest clip of the run (16 frames), so that no temporal offset is
# clamped in the last stage; their shape never changes during the run.
model = dict(vision_encoder=dict(max_frames=16))

# A named entry of default_hooks (merged with the base's hooks, unlike a custom_hooks list).
default_hooks = dict(
    curriculum=dict(type='CurriculumHook',
         curriculum=dict(type='TemporalSparseExpansion', by_epoch=True, stages=[
             dict(begin=0, num_frames=4, keep_rate=0.7),
             dict(begin=epochs_per_stage, num_frames=8, keep_rate=0.6),
             dict(begin=2 * epochs_per_stage, num_frames=16, keep_rate=0.5),
         ])),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=min_lr_ratio, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr_ratio, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
