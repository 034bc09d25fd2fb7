"""The layer tools and notebooks use: register every part, prepare and check a config, load a trained
model and use it (encode videos and texts, rank videos, answer questions), measure costs, and set up
distributed runs. It sits above models, datasets, evaluation and engine
(see the layer order in :mod:`svitt_mm`).

The names below are imported from their modules on first use, so that a light module of this layer
(``svitt_mm.apis.cli``, which every tool ends with) does not pull in torch and the models.
"""
import importlib
from typing import Any, Dict

_EXPORTS = {
    'config_check': ['ConfigCheckError', 'check_config', 'config_problems'],
    'cost': ['count_flops', 'peak_rss_mb'],
    'cpu_allocator': ['retain_freed_memory'],
    'distributed': ['STRATEGIES', 'DistributedSetupError', 'finish_distributed', 'setup_distributed',
                    'use_strategy'],
    'embeddings': ['TextEmbeddings', 'VideoEmbeddings'],
    'inference': ['answer_questions', 'encode_texts', 'encode_videos', 'rank_videos'],
    'model_loading': ['init_model'],
    'pipeline_inputs': ['model_batch'],
    'preflight': ['MissingInputError', 'check_required_inputs'],
    'registration': ['register_all_modules'],
    'run_config': ['build_test_config', 'check_before_run', 'check_training_batches', 'default_work_dir',
                   'load_config'],
}
_MODULE_OF: Dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{__name__}.{_MODULE_OF[name]}'), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
