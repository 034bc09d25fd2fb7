"""Registries of svitt_mm, and where in a config each one's parts are named.

MMEngine's root registries each get one child here (scope ``svitt_mm``) so that the Runner finds our
parts by name; ``locations`` lists the modules that register parts, so that every part is registered
before the first build. Children whose roots hold only MMEngine's parts (optimizers, schedulers,
visualizers, ...) have no ``locations``: they let the Runner resolve those names in our scope.

The project's own registries (``BACKBONES``, ``ATTENTION_OPS``, ``ATTENTION_PATTERNS``, ``TOKEN_PRUNERS``,
``FUSION_HEADS``, ``EMBEDDING_HEADS``, ``DECODERS``, ``CURRICULA``) are roots: MMEngine allows one child per
scope under a parent, and ``MODELS`` already has ours.

Each registry is declared with ``keys``: regular expressions over config key paths (``a.b[0].c``) at
which a dict's ``type`` names one of its parts. :func:`registries_for_key` answers "which registry does
``model.vision_encoder.attention`` belong to" for the config check (``svitt_mm.apis.config_check``), so a
new registry or a new config key is added here, in one place.
"""
from __future__ import annotations

import re
from typing import List, Sequence, Tuple

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

#: ``(compiled key-path pattern, registry)`` in declaration order; filled by :func:`_registry`.
CONFIG_KEYS: List[Tuple['re.Pattern[str]', Registry]] = []


def _registry(name: str, keys: Sequence[str] = (), **kwargs) -> Registry:
    """A registry in scope ``svitt_mm`` whose parts configs name at the key paths matching ``keys``."""
    registry = Registry(name, scope='svitt_mm', **kwargs)
    CONFIG_KEYS.extend((re.compile(key), registry) for key in keys)
    return registry


def registries_for_key(path: str) -> List[Registry]:
    """The registries whose ``keys`` match the config key path ``path`` (e.g. ``custom_hooks[0]``), in
    declaration order; empty when no registry claims the path."""
    found = []
    for pattern, registry in CONFIG_KEYS:
        if pattern.search(path) and registry not in found:
            found.append(registry)
    return found


# --- children of MMEngine's root registries -------------------------------------------------------
MODELS = _registry('model', parent=MMENGINE_MODELS, locations=['svitt_mm.models'],
                   keys=[r'^model$', r'(^|\.)data_preprocessor$'])
DATASETS = _registry('dataset', parent=MMENGINE_DATASETS, locations=['svitt_mm.datasets'],
                     keys=[r'(^|\.)(dataset|datasets\[\d+\])$'])
DATA_SAMPLERS = _registry('data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['svitt_mm.datasets'],
                          keys=[r'(^|\.)(batch_)?sampler$'])
FUNCTIONS = _registry('function', parent=MMENGINE_FUNCTIONS, locations=['svitt_mm.datasets'],
                      keys=[r'\.collate_fn$'])
TRANSFORMS = _registry('transform', parent=MMENGINE_TRANSFORMS,
                       locations=['svitt_mm.datasets.transforms'],
                       keys=[r'(^|\.|_)(pipeline|transforms)\[\d+\]$'])
METRICS = _registry('metric', parent=MMENGINE_METRICS, locations=['svitt_mm.evaluation'],
                    keys=[r'^(val|test)_evaluator(\.metrics)?(\[\d+\])?$'])
# An evaluator config may name a metric (above) or an evaluator.
EVALUATOR = _registry('evaluator', parent=MMENGINE_EVALUATOR, keys=[r'^(val|test)_evaluator$'])
HOOKS = _registry('hook', parent=MMENGINE_HOOKS, locations=['svitt_mm.engine.hooks'],
                  keys=[r'^(default_hooks\.\w+|custom_hooks\[\d+\])$'])
LOOPS = _registry('loop', parent=MMENGINE_LOOPS, locations=['svitt_mm.engine.loops'],
                  keys=[r'^(train|val|test)_cfg$'])
OPTIM_WRAPPERS = _registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
                           locations=['svitt_mm.engine.optim_wrappers'], keys=[r'^optim_wrapper$'])
OPTIMIZERS = _registry('optimizer', parent=MMENGINE_OPTIMIZERS, keys=[r'^optim_wrapper\.optimizer$'])
OPTIM_WRAPPER_CONSTRUCTORS = _registry('optimizer wrapper constructor',
                                       parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                       keys=[r'^optim_wrapper\.constructor$'])
PARAM_SCHEDULERS = _registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS,
                             keys=[r'^param_scheduler(\[\d+\])?$'])
WEIGHT_INITIALIZERS = _registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
                                keys=[r'(^|\.)init_cfg(\[\d+\])?$'])
LOG_PROCESSORS = _registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, keys=[r'^log_processor$'])
VISUALIZERS = _registry('visualizer', parent=MMENGINE_VISUALIZERS, keys=[r'^visualizer$'])
VISBACKENDS = _registry('vis_backend', parent=MMENGINE_VISBACKENDS, keys=[r'vis_backends\[\d+\]$'])
MODEL_WRAPPERS = _registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['svitt_mm.engine.strategies'],
                           keys=[r'^model_wrapper_cfg$'])
RUNNERS = _registry('runner', parent=MMENGINE_RUNNERS)
# FlexibleRunner's distribution strategies (tools/train.py --strategy).
STRATEGIES = _registry('strategy', parent=MMENGINE_STRATEGIES, locations=['svitt_mm.engine.strategies'],
                       keys=[r'^strategy$'])

# --- svitt_mm's own registries ---------------------------------------------------------------------
# Video and text encoders (VideoBEiT, FrameBagEncoder, BertFusionEncoder).
BACKBONES = _registry('backbone', locations=['svitt_mm.models.backbones', 'svitt_mm.models.text'],
                      keys=[r'\.(vision_encoder|text_encoder|encoder)$'])
# How a layer computes attention (dense, block-sparse) ...
ATTENTION_OPS = _registry('attention operator', locations=['svitt_mm.models.attention'],
                          keys=[r'\.attention(\[\d+\])?$'])
# ... and, for block-sparse attention, which key blocks each query block sees.
ATTENTION_PATTERNS = _registry('attention pattern', locations=['svitt_mm.models.attention'],
                               keys=[r'\.attention(\[\d+\])?\.pattern$'])
# Node sparsity: which visual tokens a layer keeps.
TOKEN_PRUNERS = _registry('token pruner', locations=['svitt_mm.models.pruners'], keys=[r'\.pruner$'])
# Heads on the multimodal (fused) outputs: video-text matching, masked language modelling.
FUSION_HEADS = _registry('fusion head', locations=['svitt_mm.models.heads', 'svitt_mm.models.text'],
                         keys=[r'^model\.(matching|lm)_head$'])
# Heads that map each encoder's [CLS] into the joint embedding space (contrastive alignment).
EMBEDDING_HEADS = _registry('embedding head', locations=['svitt_mm.models.heads'],
                            keys=[r'^model\.contrastive_head$'])
# Text decoders that generate answers (video QA).
DECODERS = _registry('decoder', locations=['svitt_mm.models.text'], keys=[r'^model\.answer_decoder$'])
# Curriculum schedulers (temporal sparse expansion).
CURRICULA = _registry('curriculum', locations=['svitt_mm.engine.curricula'],
                      keys=[r'^(default_hooks\.\w+|custom_hooks\[\d+\])\.curriculum$'])
