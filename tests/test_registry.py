"""The registries: scopes, parents, locations that register something, and the config key paths each one
claims (checked against every shipped config)."""
import glob
import importlib
import os.path as osp

import pytest
from mmengine import registry as mm
from mmengine.config import Config
from mmengine.registry import Registry

import svitt_mm.registry as registry
from svitt_mm.apis import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OURS = {name: value for name, value in vars(registry).items()
        if isinstance(value, Registry) and value.scope == 'svitt_mm'}
MMENGINE_CHILDREN = ['MODELS', 'DATASETS', 'DATA_SAMPLERS', 'FUNCTIONS', 'TRANSFORMS', 'METRICS', 'HOOKS',
                     'LOOPS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'PARAM_SCHEDULERS',
                     'LOG_PROCESSORS', 'VISUALIZERS', 'VISBACKENDS', 'RUNNERS', 'EVALUATOR', 'MODEL_WRAPPERS',
                     'WEIGHT_INITIALIZERS', 'STRATEGIES']
PROJECT_ROOTS = ['BACKBONES', 'ATTENTION_OPS', 'ATTENTION_PATTERNS', 'TOKEN_PRUNERS', 'FUSION_HEADS',
                 'EMBEDDING_HEADS', 'DECODERS', 'CURRICULA']


def test_every_registry_is_listed():
    assert sorted(OURS) == sorted(MMENGINE_CHILDREN + PROJECT_ROOTS)


@pytest.mark.parametrize('name', MMENGINE_CHILDREN)
def test_children_of_mmengine_roots(name):
    assert getattr(registry, name).parent is getattr(mm, name)


@pytest.mark.parametrize('name', PROJECT_ROOTS)
def test_project_registries_are_roots(name):
    assert getattr(registry, name).parent is None


@pytest.mark.parametrize('name', sorted(OURS))
def test_every_location_imports_and_registers_a_part(name):
    """No empty ``locations``: each listed module registers at least one part of that registry."""
    reg = OURS[name]
    for location in reg._locations:
        importlib.import_module(location)
        owners = {part.__module__ for part in reg.module_dict.values()}
        assert any(owner == location or owner.startswith(location + '.') for owner in owners), (
            f'{name}: nothing under {location} registers a part')


@pytest.mark.parametrize('registry_name,part', [
    ('MODELS', 'VideoTextRetriever'), ('MODELS', 'VideoTextDataPreprocessor'),
    ('BACKBONES', 'VideoBEiT'), ('BACKBONES', 'BertFusionEncoder'), ('BACKBONES', 'FrameBagEncoder'),
    ('ATTENTION_OPS', 'DenseAttention'), ('ATTENTION_OPS', 'BlockSparseAttention'),
    ('TOKEN_PRUNERS', 'ClsAttentionPruner'), ('TOKEN_PRUNERS', 'RandomPruner'),
    ('TOKEN_PRUNERS', 'TextGuidedPruner'),
    ('EMBEDDING_HEADS', 'ContrastiveHead'), ('FUSION_HEADS', 'MatchingHead'),
    ('FUSION_HEADS', 'LanguageModelHead'), ('DECODERS', 'AnswerDecoder'),
    ('LOOPS', 'RetrievalValLoop'), ('LOOPS', 'RetrievalTestLoop'), ('METRICS', 'RetrievalMetric'),
    ('HOOKS', 'MetricsTableHook'), ('DATASETS', 'VideoTextDataset'),
    ('FUNCTIONS', 'video_text_collate'), ('CURRICULA', 'TemporalSparseExpansion'),
])
def test_shipped_parts_are_registered(registry_name, part):
    reg = getattr(registry, registry_name)
    reg.import_from_location()
    assert reg.get(part) is not None


@pytest.mark.parametrize('path,expected', [
    ('model', ['MODELS']), ('model.data_preprocessor', ['MODELS']),
    ('model.vision_encoder', ['BACKBONES']), ('model.vision_encoder.encoder', ['BACKBONES']),
    ('model.vision_encoder.attention', ['ATTENTION_OPS']),
    ('model.vision_encoder.attention.pattern', ['ATTENTION_PATTERNS']),
    ('model.vision_encoder.pruner', ['TOKEN_PRUNERS']), ('model.contrastive_head', ['EMBEDDING_HEADS']),
    ('model.matching_head', ['FUSION_HEADS']), ('model.answer_decoder', ['DECODERS']),
    ('default_hooks.curriculum', ['HOOKS']), ('default_hooks.curriculum.curriculum', ['CURRICULA']),
    ('test_evaluator', ['METRICS', 'EVALUATOR']), ('test_evaluator.metrics[1]', ['METRICS']),
    ('train_dataloader.dataset.datasets[0].pipeline[3]', ['TRANSFORMS']),
    ('model.something_new', []),
])
def test_registries_for_key(path, expected):
    assert registry.registries_for_key(path) == [getattr(registry, name) for name in expected]


def _typed_dicts(node, path=''):
    if isinstance(node, dict):
        if path and isinstance(node.get('type'), str):
            yield path, node['type']
        for key, value in node.items():
            yield from _typed_dicts(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _typed_dicts(value, f'{path}[{index}]')


SHIPPED = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))


@pytest.mark.parametrize('config', SHIPPED, ids=lambda p: osp.relpath(p, ROOT))
def test_every_type_in_shipped_configs_has_its_registry(config):
    """Every ``type=`` of every shipped config (base fragments included) sits at a key path some registry
    claims, and that registry knows the part: the key table covers what the project ships."""
    register_all_modules()
    for path, name in _typed_dicts(Config.fromfile(config).to_dict()):
        found = registry.registries_for_key(path)
        assert found, f'{osp.relpath(config, ROOT)}: no registry claims {path} (type {name!r})'
        assert any(reg.get(name) is not None for reg in found), (path, name, [r.name for r in found])
