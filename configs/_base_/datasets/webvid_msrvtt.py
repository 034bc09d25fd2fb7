# WebVid-2M video-text pairs for training (Singularity/SViTT annotation format) and MSR-VTT 1k-A for
# validation/testing, as in SViTT's pretraining configs. Paths are relative to the repository root;
# docs/datasets.md says where to get each file.
_base_ = []  # stated first, so that MMEngine reads this as a classic config despite the import below
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

num_frames = 4  # training clip length
num_test_clips = 1  # test-time clips per video (clip ensembles: mean/max/lse over clips)
img_size = 224
max_text_len = 32
tokenizer = 'data/pretrained/bert-base-uncased'

webvid_ann = 'data/webvid/anno/webvid_train.json'
webvid_videos = 'data/webvid/videos'
msrvtt_ann = 'data/msrvtt/anno/msrvtt_ret_test1k.json'
msrvtt_videos = 'data/msrvtt/videos'

# Decode, sample, augment (one crop and flip per clip), clean and tokenise captions; see the docstring.
train_pipeline, test_pipeline = retrieval_pipelines(num_frames, img_size, tokenizer, max_text_len,
                                                    num_test_clips)

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    drop_last=True,
    dataset=dict(type='VideoTextDataset', ann_file=webvid_ann, media_root=webvid_videos, mode='train',
                 check_media=False, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='svitt_mm.video_text_collate'),
    dataset=dict(type='VideoTextDataset', ann_file=msrvtt_ann, media_root=msrvtt_videos, mode='eval',
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader

required_data_inputs = {
    'train_dataloader.dataset.ann_file':
        'WebVid-2M annotations in Singularity format (webvid_train.json): see docs/datasets.md#webvid',
    'train_dataloader.dataset.media_root':
        'WebVid-2M videos (folder the annotation paths are relative to): see docs/datasets.md#webvid',
    'val_dataloader.dataset.ann_file':
        'MSR-VTT 1k-A test annotations (msrvtt_ret_test1k.json): see docs/datasets.md#msr-vtt',
    'val_dataloader.dataset.media_root': 'MSR-VTT videos: see docs/datasets.md#msr-vtt',
    'test_dataloader.dataset.ann_file':
        'MSR-VTT 1k-A test annotations (msrvtt_ret_test1k.json): see docs/datasets.md#msr-vtt',
    'test_dataloader.dataset.media_root': 'MSR-VTT videos: see docs/datasets.md#msr-vtt',
}
