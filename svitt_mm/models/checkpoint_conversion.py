"""Convert checkpoints of the published SViTT code into svitt_mm state dicts.

Reference layout (``ckpt_*.pth``, weights under ``model``, the training config under ``config``) and what
each part becomes here:

* ``vision_encoder.*`` (HF BEiT names) -> ``vision_encoder.*`` (the HF rules of
  :mod:`.backbones.beit_weights`: q/k/v fused, ``relative_position_index`` buffers dropped);
* ``vision_layernorm.*`` -> ``vision_norm.*``;
* ``text_encoder.bert.*`` (pretraining) or ``text_encoder.*`` (downstream) -> ``text_encoder.*``
  (:func:`.text.bert_weights.bert_key_to_ours`);
* ``text_encoder.cls.*`` (MLM head) -> ``lm_head.*`` (:func:`.text.bert_weights.lm_head_key_to_ours`);
* ``vision_proj.*``, ``text_proj.*``, ``temp`` -> ``contrastive_head.{vision_proj, text_proj, temperature}``;
* ``itm_head.*`` -> ``matching_head.classifier.*``;
* ``text_decoder.*`` (the QA answer decoder) and anything else unknown: dropped and reported.

The source frame count is read from ``config.video_input.num_frames``; with a different target
(``num_frames``), every relative position bias table is resized in time
(:func:`~svitt_mm.models.backbones.beit_weights.inflate_relative_position_table`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from torch import Tensor

from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.safe_load import load_weights_file

from .backbones.beit_weights import (DROPPED, LAYOUTS, TABLE_KEY, fuse_qkv,
                                     inflate_relative_position_table, rename_keys)
from .text.bert_weights import bert_key_to_ours, lm_head_key_to_ours

StateDict = Dict[str, Tensor]
NUM_CLS_ROWS = 3


class Conversion(NamedTuple):
    """``state``: converted state dict; ``dropped``: reference keys with no counterpart;
    ``source_frames`` / ``num_frames``: frame count of the checkpoint / of the converted tables."""
    state: StateDict
    dropped: List[str]
    source_frames: Optional[int]
    num_frames: Optional[int]


def _rename_head(mapping: Mapping[str, str]) -> Callable[[str], Optional[str]]:
    def rename(key: str) -> Optional[str]:
        for prefix, target in mapping.items():
            if key == prefix or key.startswith(prefix + '.'):
                return target + key[len(prefix):]
        return None
    return rename


def _text_key(key: str) -> Optional[str]:
    rest = key.removeprefix('text_encoder.')
    if rest.startswith('cls.'):
        ours = lm_head_key_to_ours(rest)
        return None if ours is None else f'lm_head.{ours}'
    ours = bert_key_to_ours(rest)
    return None if ours is None else f'text_encoder.{ours}'


_rename_small_parts = _rename_head({'vision_layernorm': 'vision_norm',
                                    'vision_proj': 'contrastive_head.vision_proj',
                                    'text_proj': 'contrastive_head.text_proj',
                                    'temp': 'contrastive_head.temperature',
                                    'itm_head': 'matching_head.classifier'})


def source_num_frames(checkpoint: Mapping[str, Any]) -> Optional[int]:
    """``config.video_input.num_frames`` of a reference checkpoint (a plain dict config), else ``None``."""
    config = checkpoint.get('config')
    video_input = config.get('video_input') if isinstance(config, Mapping) else None
    frames = video_input.get('num_frames') if isinstance(video_input, Mapping) else None
    return frames if isinstance(frames, int) else None


def _square_grid(rows: int, frames: int, key: str) -> Tuple[int, int]:
    """The patch grid ``(Hp, Hp)`` of a square-input table of ``frames`` frames and ``rows`` rows."""
    spatial, rest = divmod(rows - NUM_CLS_ROWS, 2 * frames - 1)
    side = math.isqrt(max(spatial, 0))
    if rest or side * side != spatial or side % 2 == 0:
        raise InputFileError(f'{key}: a table of {rows} rows is not a {frames}-frame table of a square patch '
                         f'grid; is the source frame count ({frames}) right?')
    return (side + 1) // 2, (side + 1) // 2


def _convert_vision(state: Mapping[str, Tensor], source_frames: Optional[int],
                    num_frames: Optional[int]) -> StateDict:
    vision = {key.removeprefix('vision_encoder.'): value for key, value in state.items()
              if not DROPPED.search(key)}
    vision = fuse_qkv(rename_keys(vision, LAYOUTS['hf'][1]))
    if num_frames is not None and num_frames != source_frames:
        if source_frames is None:
            raise InputFileError('the checkpoint config does not say its frame count '
                             '(config.video_input.num_frames): pass --source-frames to resize to '
                             f'{num_frames} frames')
        vision = {key: inflate_relative_position_table(
            value, num_frames, _square_grid(value.shape[0], source_frames, key), key)
            if TABLE_KEY.match(key) else value for key, value in vision.items()}
    return {f'vision_encoder.{key}': value for key, value in vision.items()}


def convert_svitt_state_dict(state: Mapping[str, Tensor], source_frames: Optional[int] = None,
                             num_frames: Optional[int] = None) -> Conversion:
    """Map a reference ``model`` state dict to svitt_mm names (see the module docstring).

    Args:
        state: the reference checkpoint's ``model`` dict.
        source_frames: frame count the checkpoint was trained with (needed only to resize).
        num_frames: frame count of the target model; ``None`` keeps the tables as they are.
    """
    vision = {key: value for key, value in state.items() if key.startswith('vision_encoder.')}
    converted = _convert_vision(vision, source_frames, num_frames)
    dropped = sorted(key for key in vision if DROPPED.search(key))
    for key, value in state.items():
        if key in vision:
            continue
        ours = _text_key(key) if key.startswith('text_encoder.') else _rename_small_parts(key)
        if ours is None:
            dropped.append(key)
        else:
            converted[ours] = value
    return Conversion(converted, dropped, source_frames, num_frames or source_frames)


def convert_svitt_checkpoint(source: str, num_frames: Optional[int] = None,
                             source_frames: Optional[int] = None) -> Conversion:
    """Read a reference checkpoint file safely and convert it; ``source_frames`` overrides the config's."""
    checkpoint = load_weights_file(source, 'SViTT checkpoint')
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get('model', checkpoint), Mapping):
        raise InputFileError(f'{source}: expected a dict with the weights under "model"')
    state = checkpoint.get('model', checkpoint)
    frames = source_frames or source_num_frames(checkpoint)
    return convert_svitt_state_dict(state, frames, num_frames)
