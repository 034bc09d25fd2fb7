"""A trained model from a config and a checkpoint, ready for inference: the one loader that tools,
notebooks and tests use."""
from __future__ import annotations

import copy
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config
from torch import nn

from svitt_mm.models.checked_loading import load_state_dict_checked
from svitt_mm.registry import MODELS
from svitt_mm.utils.errors import MissingFileError
from svitt_mm.utils.safe_load import load_weights_file

from .registration import register_all_modules
from .run_config import load_config


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None, strict: bool = True) -> nn.Module:
    """Build the model of ``config`` and load ``checkpoint`` into it, in eval mode on ``device``.

    Args:
        config: a config file or a loaded :class:`~mmengine.config.Config` (not modified).
        checkpoint: a checkpoint written by training (``epoch_N.pth``, a published ``.pth``) or a
            ``.safetensors`` file of the model's state dict, read safely. ``None``: the model as built,
            with its encoders' ``pretrained`` weights.
        device: e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
        cfg_options: ``--cfg-options``-style overrides merged into the config.
        strict: refuse a checkpoint built for another architecture
            (:class:`~svitt_mm.models.architecture_check.ArchitectureMismatchError`, naming the first
            setting that differs and both values); ``False`` loads the weights that fit. Keys that did
            not match are logged in one WARNING table either way.

    Returns:
        The model, with its config as ``model.cfg``: :func:`~svitt_mm.apis.encode_videos` and the other
        inference functions prepare inputs with the config's test pipeline.

    Raises ``MissingFileError`` when the config or checkpoint file does not exist.
    """
    register_all_modules()
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    else:
        cfg = load_config(config, cfg_options)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise MissingFileError(f'checkpoint {checkpoint!r} does not exist')
    model = MODELS.build(cfg.model)
    if checkpoint is None:
        model.init_weights()
    else:
        content = load_weights_file(checkpoint, 'checkpoint')
        state = content.get('state_dict', content) if isinstance(content, dict) else content
        load_state_dict_checked(model, state, checkpoint, strict=strict)
    model.cfg = cfg
    return model.to(device).eval()
