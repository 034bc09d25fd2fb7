"""The config checker: unknown types with key path and close matches, value checks, shipped configs."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from svitt_mm.registry import registries_for_key

from svitt_mm.apis.config_check import ConfigCheckError, check_config, config_problems

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo', 'svitt_demo.py')


def demo(**overrides):
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(overrides)
    return cfg


# Base fragments are checked through the configs that use them.
SHIPPED = sorted(path for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in path)


@pytest.mark.parametrize('config', SHIPPED)
def test_shipped_configs_pass(config):
    assert config_problems(Config.fromfile(config)) == []


def test_misspelled_attention_operator_names_path_and_close_match():
    cfg = demo(**{'model.vision_encoder.attention.type': 'BlockSparseAtention'})
    with pytest.raises(ConfigCheckError) as info:
        check_config(cfg, 'svitt_demo.py')
    assert info.value.problems == [
        "model.vision_encoder.attention.type: 'BlockSparseAtention' is not a registered attention operator; "
        "did you mean 'BlockSparseAttention'?"]
    assert str(info.value).startswith('1 problem(s) in svitt_demo.py:\n  model.vision_encoder')


@pytest.mark.parametrize('key,value,expected', [
    ('model.type', 'VideoTextRetreiver', "model.type: 'VideoTextRetreiver' is not a registered model; did you "
                                         "mean 'VideoTextRetriever'?"),
    ('model.vision_encoder.pruner.type', 'ClsAttnPruner', "is not a registered token pruner; did you mean "
                                                          "'ClsAttentionPruner'?"),
    ('train_dataloader.dataset.pipeline.0.type', 'OpenVidoe', "train_dataloader.dataset.pipeline[0].type: "
                                                              "'OpenVidoe' is not a registered transform"),
    ('train_dataloader.dataset.type', 'VideoTextDataset2', "'VideoTextDataset2' is not a registered dataset"),
    ('default_hooks.logger.type', 'LogerHook', "default_hooks.logger.type: 'LogerHook' is not a registered "
                                               "hook; did you mean 'LoggerHook'?"),
    ('test_evaluator.type', 'RetrievalMetrics', "did you mean 'RetrievalMetric'?"),
    ('test_cfg.type', 'RetrievalTestLop', "is not a registered loop; did you mean 'RetrievalTestLoop'?"),
    ('optim_wrapper.optimizer.type', 'AdamWW', "'AdamWW' is not a registered optimizer; did you mean 'AdamW'?"),
    ('model.text_encoder.type', 'Nonsense', "'Nonsense' is not a registered backbone"),
])
def test_each_part_is_looked_up_in_its_registry(key, value, expected):
    problems = config_problems(demo(**{key: value}))
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_type_in_the_wrong_place_is_refused():
    # A real transform name is still wrong where an attention operator is expected.
    problems = config_problems(demo(**{'model.vision_encoder.attention.type': 'OpenVideo'}))
    assert problems == ["model.vision_encoder.attention.type: 'OpenVideo' is not a registered attention "
                        "operator"]


def test_scoped_names_and_unmapped_paths():
    assert config_problems(demo(**{'default_hooks.logger.type': 'mmengine.LoggerHook'})) == []
    assert registries_for_key('model.my_extra_part') == []
    assert config_problems(demo(**{'model.my_extra_part': dict(type='BertFusionEncoder')})) == []
    assert config_problems(demo(**{'model.my_extra_part': dict(type='BertFusionEncodr')})) == [
        "model.my_extra_part.type: 'BertFusionEncodr' is not registered in any svitt_mm registry; did you "
        "mean 'BertFusionEncoder'?"]


@pytest.mark.parametrize('key,value,expected', [
    ('model.vision_encoder.pruner.keep_rate', 0.0, 'model.vision_encoder.pruner.keep_rate: 0.0 must be a '
                                                   'number in (0, 1]'),
    ('model.text_encoder.pruner.keep_rate', 1.5, 'model.text_encoder.pruner.keep_rate: 1.5 must be'),
    ('model.text_encoder.pruner.keep_rate', 'half', "keep_rate: 'half' must be"),
    ('model.vision_encoder.attention.block_size', 0, 'model.vision_encoder.attention.block_size: 0 must be an '
                                                     'int >= 1'),
    ('model.vision_encoder.attention.block_size', 2.5, 'block_size: 2.5 must be an int >= 1'),
    ('model.vision_encoder.attention.local_blocks', -1,
     'model.vision_encoder.attention.local_blocks: -1 must be None or 0 or an odd int'),
    ('model.vision_encoder.attention.random_blocks', -2,
     'model.vision_encoder.attention.random_blocks: -2 must be None or an int >= 0'),
    ('model.vision_encoder.attention.dense_threshold', 0, 'dense_threshold: 0 must be a number in (0, inf]'),
    ('model.vision_encoder.max_frames', 0, 'model.vision_encoder.max_frames: 0 must be an int >= 1'),
    ('model.vision_encoder.prune_layers', [3, -1], 'prune_layers: [3, -1] must be a list whose every item is an '
                                                   'int >= 0'),
    ('model.text_encoder.pruner.layer', -1, 'model.text_encoder.pruner.layer: -1 must be an int >= 0'),
    ('model.text_encoder.fusion_layer', 1.5, 'model.text_encoder.fusion_layer: 1.5 must be an int >= 0'),
    ('train_dataloader.dataset.pipeline.1.num_frames', 0,
     'train_dataloader.dataset.pipeline[1].num_frames: 0 must be an int >= 1'),
])
def test_bad_values(key, value, expected):
    problems = config_problems(demo(**{key: value}))
    assert len(problems) == 1 and expected in problems[0], problems


def test_pattern_and_curriculum_arguments_are_checked_by_their_declarations():
    pattern = dict(type='StridedBlocks', stride=1, local_blocks=2)
    assert config_problems(demo(**{'model.vision_encoder.attention.pattern': pattern})) == [
        'model.vision_encoder.attention.pattern.stride: 1 must be an int >= 2',
        'model.vision_encoder.attention.pattern.local_blocks: 2 must be 0 or an odd int']
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', 'svitt_curriculum_demo.py'))
    cfg.merge_from_dict({'default_hooks.curriculum.curriculum.stages': [dict(begin=0, num_frames=4),
                                                                        dict(begin=2, keep_rate=0.0)]})
    problems = config_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith('default_hooks.curriculum.curriculum.stages: ')
    assert problems[0].endswith('must be valid stages: stage 1: keep_rate must be a number in (0, 1], got 0.0')


def test_block_size_bounded_by_the_clip():
    cfg = demo()
    frames = max(step['num_frames'] for step in cfg.train_dataloader.dataset.pipeline
                 if step['type'] == 'SampleFrames')
    per_frame = (cfg.model.vision_encoder.img_size // cfg.model.vision_encoder.patch_size) ** 2
    limit = per_frame * frames
    assert config_problems(demo(**{'model.vision_encoder.attention.block_size': limit})) == []
    assert config_problems(demo(**{'model.vision_encoder.attention.block_size': limit + 1})) == [
        f'model.vision_encoder.attention.block_size: {limit + 1} is larger than the {limit} patch tokens of a '
        f'clip ({per_frame} per frame x {frames} frames); use at most {limit} (one block would hold the whole '
        f'clip, i.e. dense attention)']
    assert config_problems(demo(**{'model.vision_encoder.pruner.keep_rate': 1.0})) == []


def test_all_problems_are_reported_together():
    problems = config_problems(demo(**{'model.vision_encoder.attention.type': 'Dense',
                                       'model.text_encoder.pruner.keep_rate': -1,
                                       'custom_hooks': [dict(type='NoSuchHook')]}))
    assert len(problems) == 3


def test_train_tool_stops_before_the_runner_with_the_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/demo/svitt_demo.py', '--work-dir', str(tmp_path),
         '--cfg-options', 'model.vision_encoder.attention.type=BlockSparseAtention'],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**__import__('os').environ,
                                                                    'HF_HUB_OFFLINE': '1'})
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert ("model.vision_encoder.attention.type: 'BlockSparseAtention' is not a registered attention "
            "operator; did you mean 'BlockSparseAttention'?") in proc.stderr
