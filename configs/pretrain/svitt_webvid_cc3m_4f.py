# Stage-1 pretraining on WebVid-2M videos mixed with CC3M images (SViTT's image corpora are fed as
# 1-frame videos). Each batch comes from one corpus (frame counts never mix inside a batch); the corpora
# alternate in proportion to their sizes (SourceHomogeneousBatchSampler). Otherwise as
# svitt_webvid_4f.py.
#   python tools/train.py configs/pretrain/svitt_webvid_cc3m_4f.py
_base_ = ['svitt_webvid_4f.py']  # stated before the import, so that MMEngine reads a classic config
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

cc3m_ann = 'data/cc3m/anno/cc3m_train.json'
cc3m_images = 'data/cc3m/images'
webvid_pipeline, msrvtt_pipeline = retrieval_pipelines(
    num_frames=4, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=32)
# The same crop, flip and text steps, on one image read as a 1-frame clip instead of decoded frames.
video_reading = ('OpenVideo', 'SampleFrames', 'DecodeVideoFrames')
image_pipeline = [dict(type='LoadImageAsClip')] + [
    step for step in webvid_pipeline if step['type'] not in video_reading]

train_dataloader = dict(
    batch_sampler=dict(type='SourceHomogeneousBatchSampler'),
    drop_last=False,  # PyTorch forbids it next to a batch sampler; that one drops incomplete batches
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='VideoTextDataset', ann_file='data/webvid/anno/webvid_train.json',
                 media_root='data/webvid/videos', mode='train', check_media=False,
                 pipeline=webvid_pipeline),
            dict(type='ImageTextDataset', ann_file=cc3m_ann, media_root=cc3m_images, check_media=False,
                 pipeline=image_pipeline),
        ]),
)

# The preflight check follows dict keys only, so the datasets inside the list are named through the
# top-level path variables (webvid_ann / webvid_videos come from _base_/datasets/webvid_msrvtt.py).
required_data_inputs = {
    'webvid_ann': 'WebVid-2M annotations (webvid_train.json): see docs/datasets.md#webvid',
    'webvid_videos': 'WebVid-2M videos: see docs/datasets.md#webvid',
    'cc3m_ann': 'CC3M annotations in Singularity format (cc3m_train.json): see docs/datasets.md#cc3m',
    'cc3m_images': 'CC3M images: see docs/datasets.md#cc3m',
}
