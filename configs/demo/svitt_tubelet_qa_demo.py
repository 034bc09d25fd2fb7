# The SViTT QA demo (svitt_qa_demo.py) with 2-frame tubelets: 8 frames per clip, every token embedding one
# 16-pixel patch of two consecutive frames (4 tubelets x 16 patches = 64 tokens, as in the other demos), so
# that the video encoder can read the direction of motion (see svitt_tubelet_demo.py). At 12 and 48 epochs it
# did not yet answer direction questions better than the frame-per-token QA demo (docs/analysis.md, Video QA).
#   python tools/train.py configs/demo/svitt_tubelet_qa_demo.py
_base_ = ['svitt_qa_demo.py']

num_frames = 8  # a multiple of the tubelet size
model = dict(vision_encoder=dict(tubelet_size=2, max_frames=num_frames))

train_pipeline = _base_.train_pipeline
train_pipeline[1].num_frames = num_frames  # SampleFrames
test_pipeline = _base_.test_pipeline
test_pipeline[1].num_frames = num_frames
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
