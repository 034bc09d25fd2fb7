"""Registries of svitt_mm.

MMEngine's root registries each get one child here (scope ``svitt_mm``) so that the Runner finds our
parts by name; ``locations`` tells the registry which modules to import so that every part is
registered before the first build.  The project's own registries (``BACKBONES``, ``ATTENTION_OPS``,
``TOKEN_PRUNERS``, ``FUSION_HEADS``, ``CURRICULA``) are roots: MMEngine allows one child per scope
under a parent, and ``MODELS`` already has ours.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

# --- children of MMEngine's root registries -------------------------------------------------------
MODELS = Registry('model', parent=MMENGINE_MODELS, scope='svitt_mm',
                  locations=['svitt_mm.models'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='svitt_mm',
                    locations=['svitt_mm.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS, scope='svitt_mm',
                         locations=['svitt_mm.datasets'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, scope='svitt_mm',
                     locations=['svitt_mm.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='svitt_mm',
                      locations=['svitt_mm.datasets.transforms'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='svitt_mm',
                   locations=['svitt_mm.evaluation'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='svitt_mm',
                 locations=['svitt_mm.engine.hooks'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='svitt_mm',
                 locations=['svitt_mm.engine.loops'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='svitt_mm', locations=['svitt_mm.engine'])

# Roots whose MMEngine parts the configs use as they are (AdamW, schedulers, wrappers, ...): their
# svitt_mm children hold nothing yet, and let the Runner resolve names in our scope without warnings.
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope='svitt_mm')
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='svitt_mm',
                         locations=['svitt_mm.engine.optim_wrappers'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, scope='svitt_mm')
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, scope='svitt_mm')
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, scope='svitt_mm')
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, scope='svitt_mm')
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='svitt_mm')
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, scope='svitt_mm')
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='svitt_mm')
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
                               scope='svitt_mm')

# --- svitt_mm's own registries ---------------------------------------------------------------------
BACKBONES = Registry('backbone', scope='svitt_mm', locations=['svitt_mm.models.backbones',
                                                              'svitt_mm.models.text'])
ATTENTION_OPS = Registry('attention operator', scope='svitt_mm',
                         locations=['svitt_mm.models.attention'])
TOKEN_PRUNERS = Registry('token pruner', scope='svitt_mm', locations=['svitt_mm.models.pruners'])
FUSION_HEADS = Registry('fusion head', scope='svitt_mm', locations=['svitt_mm.models.heads'])
# Curriculum schedulers (temporal sparse expansion) register here.
CURRICULA = Registry('curriculum', scope='svitt_mm', locations=['svitt_mm.engine.curricula'])
