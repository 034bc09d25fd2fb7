# The SViTT twin-batch demo (svitt_twins_demo.py) with 2-frame tubelets: 8 frames per clip, and every token
# embeds one 16-pixel patch of two consecutive frames (4 tubelets x 16 patches = the same 64 tokens as the
# other demos). The tubelet's patch embedding sees which way a patch changes between its two frames, so this
# model can learn the direction of motion, which the frame-per-token demos do not learn at demo scale
# (docs/analysis.md). It is the demo's positive control for tools/analysis/temporal_probe.py.
#   python tools/train.py configs/demo/svitt_tubelet_demo.py
_base_ = ['svitt_twins_demo.py']

num_frames = 8  # a multiple of the tubelet size
model = dict(vision_encoder=dict(tubelet_size=2, max_frames=num_frames))

train_pipeline = _base_.train_pipeline
train_pipeline[1].num_frames = num_frames  # SampleFrames
test_pipeline = _base_.test_pipeline
test_pipeline[1].num_frames = num_frames
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
