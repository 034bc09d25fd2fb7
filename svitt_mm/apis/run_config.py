"""Preparing a config for a run, as every tool does it: load it with ``--cfg-options`` merged, pick the
work dir, check it before anything is built, and (for evaluation) reduce it to the test loop."""
from __future__ import annotations

import os.path as osp
from typing import Optional

from mmengine.config import Config

from svitt_mm.utils.errors import InputFileError, MissingFileError, UserError

from .config_check import check_config
from .preflight import check_required_inputs
from .registration import register_all_modules


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """``config`` (a Python config file) with ``cfg_options`` (``--cfg-options`` key/value pairs) merged.

    Raises:
        MissingFileError: the file (or a ``_base_`` file it names) does not exist.
        InputFileError: it is not valid Python.
    """
    if not osp.isfile(config):
        raise MissingFileError(f'config file {config!r} does not exist')
    try:
        cfg = Config.fromfile(config)
    except FileNotFoundError as error:  # a _base_ file
        raise MissingFileError(f'{config}: {error}') from None
    except SyntaxError as error:  # MMEngine parses the text without naming the file
        where = error.filename if error.filename and osp.isfile(error.filename) else config
        raise InputFileError(f'{where}, line {error.lineno}: {error.msg}: {(error.text or "").strip()}') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def default_work_dir(cfg: Config, config: str, work_dir: Optional[str] = None) -> str:
    """``work_dir`` if given, else the config's ``work_dir``, else ``work_dirs/<config file name>``."""
    return work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(config))[0])


def check_before_run(cfg: Config, config: str = '') -> None:
    """Every registered ``type`` and checked value of ``cfg``, and every input file it declares
    (``required_*``); raises ``ConfigCheckError`` or ``MissingInputError`` listing all problems."""
    check_config(cfg, config)
    check_required_inputs(cfg, config)


def build_test_config(config: str, checkpoint: str, work_dir: Optional[str] = None,
                      cfg_options: Optional[dict] = None, launcher: str = 'none',
                      on_broken_media: Optional[str] = None) -> Config:
    """The config that evaluates ``checkpoint`` with ``config``'s test loop (train/val parts removed,
    ``load_from`` set, ``test_dataloader.dataset.on_broken_media`` set when given); raises a
    :class:`~svitt_mm.utils.errors.UserError` when the config names unknown types or bad values, or the
    checkpoint or test data is missing."""
    register_all_modules()
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    cfg.work_dir = default_work_dir(cfg, config, work_dir)
    if not osp.isfile(checkpoint):
        raise MissingFileError(f'checkpoint {checkpoint!r} does not exist')
    cfg.load_from = checkpoint
    # Only the test split and the checkpoint are needed here.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    if on_broken_media:
        cfg.test_dataloader.dataset.on_broken_media = on_broken_media
    check_before_run(cfg, config)
    return cfg


def check_training_batches(runner) -> None:
    """Refuse a training set that yields no batch (fewer samples than one batch with ``drop_last``), which
    MMEngine would otherwise meet in an assertion while building the schedulers. Builds the train loop
    (as ``runner.train()`` does first)."""
    loader = runner.train_loop.dataloader
    if len(loader) == 0:
        batch = loader.batch_size or getattr(loader.batch_sampler, 'batch_size', '?')
        raise UserError(f'train_dataloader: its {len(loader.dataset)} samples fill no batch of {batch} (drop_last='
                        f'{loader.drop_last}); use a smaller train_dataloader.batch_size or more training data')
