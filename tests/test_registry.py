import importlib

import pytest

import svitt_mm.registry as registry

ALL = ['MODELS', 'DATASETS', 'DATA_SAMPLERS', 'FUNCTIONS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
       'OPTIM_WRAPPER_CONSTRUCTORS', 'BACKBONES', 'ATTENTION_OPS', 'TOKEN_PRUNERS', 'FUSION_HEADS',
       'CURRICULA']


@pytest.mark.parametrize('name', ALL)
def test_every_location_imports(name):
    reg = getattr(registry, name)
    assert reg.scope == 'svitt_mm'
    for location in reg._locations:
        importlib.import_module(location)


def test_children_of_mmengine_roots():
    from mmengine import registry as mm
    for name in ['MODELS', 'DATASETS', 'DATA_SAMPLERS', 'FUNCTIONS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
                 'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'PARAM_SCHEDULERS',
                 'LOG_PROCESSORS', 'VISUALIZERS', 'VISBACKENDS', 'RUNNERS', 'EVALUATOR', 'MODEL_WRAPPERS',
                 'WEIGHT_INITIALIZERS']:
        assert getattr(registry, name).parent is getattr(mm, name)


@pytest.mark.parametrize('registry_name,part', [
    ('MODELS', 'VideoTextRetriever'), ('MODELS', 'VideoTextDataPreprocessor'),
    ('BACKBONES', 'VideoBEiT'), ('BACKBONES', 'BertFusionEncoder'),
    ('ATTENTION_OPS', 'DenseAttention'), ('TOKEN_PRUNERS', 'ClsAttentionPruner'),
    ('TOKEN_PRUNERS', 'RandomPruner'), ('TOKEN_PRUNERS', 'TextGuidedPruner'),
    ('FUSION_HEADS', 'ContrastiveHead'), ('FUSION_HEADS', 'MatchingHead'),
    ('LOOPS', 'RetrievalValLoop'), ('LOOPS', 'RetrievalTestLoop'), ('METRICS', 'RetrievalMetric'),
    ('HOOKS', 'MetricsTableHook'), ('DATASETS', 'VideoTextDataset'),
    ('FUNCTIONS', 'video_text_collate'),
])
def test_shipped_parts_are_registered(registry_name, part):
    reg = getattr(registry, registry_name)
    reg.import_from_location()
    assert reg.get(part) is not None
