# Data settings shared by the paper's video QA configs (reference doc, section 5.2): 8 training frames
# (random within equal segments), 24 test frames as 3 clips of 8 (segment centres), 224 x 224, questions
# of 25 tokens, answers of 5. Each configs/qa/*.py sets the annotation files and the answer list.
num_frames = 8
num_test_clips = 3
img_size = 224
max_question_len = 25
max_answer_len = 5
tokenizer = 'data/pretrained/bert-base-uncased'

qa_text_pipeline = [dict(type='TokenizeQA', tokenizer=tokenizer, max_question_len=max_question_len,
                max_answer_len=max_answer_len),
           dict(type='PackVideoQAInputs')]
# One random resized crop per clip; no horizontal flip, which would swap "left" and "right" in
# questions and answers (the reference flips).
train_pipeline = [
    dict(type='OpenVideo', backend='decord'),
    dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='rand'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipRandomResizedCrop', size=img_size, scale=(0.5, 1.0), interpolation='bicubic'),
] + qa_text_pipeline
test_pipeline = [
    dict(type='OpenVideo', backend='decord'),
    dict(type='SampleFrames', num_frames=num_frames, num_clips=num_test_clips, sampling='middle'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipResize', size=img_size, keep_ratio=False, interpolation='bicubic'),
] + qa_text_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    drop_last=True,
    dataset=dict(type='VideoQADataset', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    dataset=dict(type='VideoQADataset', pipeline=test_pipeline, test_mode=True),
)
test_dataloader = val_dataloader
