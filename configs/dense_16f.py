# Dense baseline at 16 frames (same model as dense_4f.py; longer clips).
#   python tools/train.py configs/dense_16f.py
_base_ = ['dense_4f.py']
num_frames = 16
model = dict(vision_encoder=dict(max_frames=num_frames))

# The pipelines are restated because their clip length changes.
img_size = 224
num_test_clips = 1
max_text_len = 32
tokenizer = 'data/pretrained/bert-base-uncased'
train_pipeline = [
    dict(type='OpenVideo', backend='decord'),
    dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='rand'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipRandomResizedCrop', size=img_size, scale=(0.5, 1.0), interpolation='bicubic'),
    dict(type='ClipFlip', prob=0.5),
    dict(type='CleanCaptions'),
    dict(type='TokenizeCaptions', tokenizer=tokenizer, max_length=max_text_len),
    dict(type='PackVideoTextInputs'),
]
test_pipeline = [
    dict(type='OpenVideo', backend='decord'),
    dict(type='SampleFrames', num_frames=num_frames, num_clips=num_test_clips, sampling='middle'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipResize', size=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='CleanCaptions'),
    dict(type='TokenizeCaptions', tokenizer=tokenizer, max_length=max_text_len),
    dict(type='PackVideoTextInputs'),
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
