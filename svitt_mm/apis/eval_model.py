"""What the analysis tools (``tools/analysis/``) share: a trained model from a config and a checkpoint, and
test-set items turned into a model batch."""
from __future__ import annotations

import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import nn

from svitt_mm.registry import MODELS

from .run_config import load_config


def load_eval_model(config: str, checkpoint: str,
                    cfg_options: Optional[Dict[str, object]] = None) -> Tuple[Config, nn.Module]:
    """``config`` (with ``cfg_options`` merged) and its model, with ``checkpoint`` loaded, in eval mode.

    Raises ``SystemExit`` with a readable message when the checkpoint file does not exist.
    """
    if not osp.isfile(checkpoint):
        raise SystemExit(f'error: checkpoint {checkpoint!r} does not exist')
    cfg = load_config(config, cfg_options)
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, checkpoint, map_location='cpu')
    return cfg, model


def model_batch(model: nn.Module, items: Sequence[dict]) -> dict:
    """Dataset items (``inputs`` and ``data_samples`` each) as the model's data preprocessor outputs them
    in evaluation."""
    return model.data_preprocessor(dict(inputs=[item['inputs'] for item in items],
                                        data_samples=[item['data_samples'] for item in items]), False)
