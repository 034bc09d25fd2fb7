"""The layer tools and notebooks use: register every part, prepare and check a config, load a trained
model and use it (encode videos and texts, rank videos, answer questions), measure costs, and set up
distributed runs. It sits above models, datasets, evaluation and engine
(see the layer order in :mod:`svitt_mm`)."""
from .config_check import ConfigCheckError, check_config, config_problems
from .cost import count_flops, peak_rss_mb
from .cpu_allocator import retain_freed_memory
from .distributed import (STRATEGIES, DistributedSetupError, finish_distributed, setup_distributed,
                          use_strategy)
from .embeddings import TextEmbeddings, VideoEmbeddings
from .inference import answer_questions, encode_texts, encode_videos, rank_videos
from .model_loading import init_model
from .pipeline_inputs import model_batch
from .preflight import MissingInputError, check_required_inputs
from .registration import register_all_modules
from .run_config import build_test_config, check_before_run, default_work_dir, load_config

__all__ = ['ConfigCheckError', 'check_config', 'config_problems', 'count_flops', 'peak_rss_mb',
           'retain_freed_memory', 'STRATEGIES', 'DistributedSetupError', 'finish_distributed',
           'setup_distributed', 'use_strategy', 'TextEmbeddings', 'VideoEmbeddings', 'answer_questions',
           'encode_texts', 'encode_videos', 'rank_videos', 'init_model', 'model_batch', 'MissingInputError',
           'check_required_inputs', 'register_all_modules', 'build_test_config', 'check_before_run',
           'default_work_dir', 'load_config']
