# The SViTT twin-batch demo (svitt_twins_demo.py) with 2-frame tubelets: 8 frames per clip, and every token
# embeds one 16-pixel patch of two consecutive frames (4 tubelets x 16 patches = the same 64 tokens as the
# other demos). The tubelet's patch embedding sees which way a patch changes between its two frames, so this
# encoder learns the direction of motion from labels within 1,000 steps, which the frame-per-token encoders
# do not learn in 13,000 (tools/analysis/label_probe.py, docs/analysis.md).
# 100 epochs, about 27 minutes on 2 CPU cores: the first demo whose retrieval depends on frame order
# (reversing the test clips costs 12 points of R_mean, 42 of first-stage t2v R@10; docs/analysis.md).
#   python tools/train.py configs/demo/svitt_tubelet_demo.py
_base_ = ['svitt_twins_demo.py']

max_epochs = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=25, max_keep_ckpts=2))

num_frames = 8  # a multiple of the tubelet size
model = dict(vision_encoder=dict(tubelet_size=2, max_frames=num_frames))

train_pipeline = _base_.train_pipeline
train_pipeline[1].num_frames = num_frames  # SampleFrames
test_pipeline = _base_.test_pipeline
test_pipeline[1].num_frames = num_frames
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
