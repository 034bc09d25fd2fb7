"""Standard video-text pipelines as config lists, so that configs that differ only in clip length, image
size or tokenizer state those values once (``from svitt_mm.datasets.pipelines import ...`` works inside
MMEngine's Python configs)."""
from __future__ import annotations

from typing import List, Tuple


def retrieval_pipelines(num_frames: int, img_size: int, tokenizer: str, max_text_len: int,
                        num_test_clips: int = 1, flip: bool = True,
                        crop_scale: Tuple[float, float] = (0.5, 1.0)) -> Tuple[List[dict], List[dict]]:
    """SViTT's train and test pipelines (reference doc, section 5.1).

    Train: decode ``num_frames`` frames sampled at random within equal segments, one random resized crop
    (scale ``crop_scale``, bicubic) and, with ``flip``, one horizontal flip for the whole clip, caption
    cleaning and tokenisation. Test: ``num_test_clips`` clips of ``num_frames`` frames from segment
    centres, resized to ``img_size`` x ``img_size`` (bicubic).
    """
    text = [dict(type='CleanCaptions'),
            dict(type='TokenizeCaptions', tokenizer=tokenizer, max_length=max_text_len),
            dict(type='PackVideoTextInputs')]
    train = [dict(type='OpenVideo', backend='decord'),
             dict(type='SampleFrames', num_frames=num_frames, num_clips=1, sampling='rand'),
             dict(type='DecodeVideoFrames'),
             dict(type='ClipRandomResizedCrop', size=img_size, scale=crop_scale, interpolation='bicubic')]
    if flip:
        train.append(dict(type='ClipFlip', prob=0.5))
    test = [dict(type='OpenVideo', backend='decord'),
            dict(type='SampleFrames', num_frames=num_frames, num_clips=num_test_clips, sampling='middle'),
            dict(type='DecodeVideoFrames'),
            dict(type='ClipResize', size=img_size, keep_ratio=False, interpolation='bicubic')]
    return train + text, test + [dict(t) for t in text]


def retrieval_clip_length(num_frames: int, img_size: int = 224,
                          tokenizer: str = 'data/pretrained/bert-base-uncased', max_text_len: int = 32
                          ) -> Tuple[List[dict], List[dict], dict, dict, dict]:
    """What a retrieval config on ``_base_/datasets/webvid_msrvtt.py`` (whose defaults these are) changes
    to train and evaluate on ``num_frames``-frame clips: ``(train_pipeline, test_pipeline,
    train_dataloader, val_dataloader, test_dataloader)``, the loaders as entries merged into the base's::

        train_pipeline, test_pipeline, train_dataloader, val_dataloader, test_dataloader = \\
            retrieval_clip_length(8)
    """
    train, test = retrieval_pipelines(num_frames, img_size, tokenizer, max_text_len)
    val = dict(dataset=dict(pipeline=test))
    return train, test, dict(dataset=dict(pipeline=train)), val, val
