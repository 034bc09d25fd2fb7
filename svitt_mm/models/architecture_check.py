"""Refuse weights built for another architecture, naming the first setting that differs.

A checkpoint of a 3-layer video encoder "loads" into a 4-layer one with a few missing keys, and gives
R@1 close to 0. Encoders declare their architecture as ``architecture_settings`` (a class attribute:
:data:`VIDEO_BEIT_SETTINGS`, :data:`BERT_FUSION_SETTINGS`); each setting is read from the weights' keys
and shapes (in svitt_mm's own key layout) and from the model's, for every such encoder inside the model,
and the first that differs is reported with both values.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Optional, Sequence, Tuple

from torch import Tensor, nn

from svitt_mm.utils.errors import UserError

Extractor = Callable[[Mapping[str, Tensor], str, nn.Module], Optional[float]]


class ArchitectureMismatchError(UserError, ValueError):
    """Weights were built for a model of another architecture (another layer count, width, ...)."""


def _layer_count(part: str) -> Extractor:
    def count(state: Mapping[str, Tensor], prefix: str, module: nn.Module) -> Optional[int]:
        pattern = re.compile(re.escape(prefix + part) + r'\.(\d+)\.')
        indices = {int(m.group(1)) for m in map(pattern.match, state) if m}
        return max(indices) + 1 if indices else None
    return count


def _first_layer_with(part: str) -> Extractor:
    def first(state: Mapping[str, Tensor], prefix: str, module: nn.Module) -> Optional[int]:
        pattern = re.compile(re.escape(prefix) + r'layers\.(\d+)\.' + re.escape(part) + r'\.')
        indices = {int(m.group(1)) for m in map(pattern.match, state) if m}
        return min(indices) if indices else None
    return first


def _dim(key: str, dim: int, divide_by: Optional[Callable[[nn.Module], int]] = None) -> Extractor:
    def size(state: Mapping[str, Tensor], prefix: str, module: nn.Module) -> Optional[int]:
        tensor = state.get(prefix + key)
        if tensor is None or tensor.dim() <= dim:
            return None
        return tensor.shape[dim] // divide_by(module) if divide_by else tensor.shape[dim]
    return size


def _switch(key: str, attribute: str) -> Extractor:
    """Whether an optional parameter ``key`` is there: ``True`` when it is; when it is not, ``False`` if
    the module has the switch ``attribute`` off, else ``None`` (not compared). So weights with the
    parameter are refused by a model without it, while a model with it takes weights without it (the
    parameter keeps its initialisation)."""
    def present(state: Mapping[str, Tensor], prefix: str, module: nn.Module) -> Optional[bool]:
        if prefix + key in state:
            return True
        return None if getattr(module, attribute, False) else False
    return present


Settings = Sequence[Tuple[str, Extractor]]
# (setting, how to read it), in the order they are compared; named as the encoders' arguments.
VIDEO_BEIT_SETTINGS: Settings = (
    ('num_layers', _layer_count('blocks')),
    ('embed_dims', _dim('cls_token', 2)),
    ('num_heads', _dim('blocks.0.attn.relative_position_bias.table', 1)),
    ('patch_size', _dim('patch_embed.proj.weight', 3)),
    ('tubelet_size', _dim('patch_embed.proj.weight', 1, lambda module: module.in_channels)),
    ('MLP width (mlp_ratio * embed_dims)', _dim('blocks.0.mlp.fc1.weight', 0)),
    ('use_abs_pos_emb', _switch('pos_embed', 'use_abs_pos_emb')),
    ('use_temporal_emb', _switch('temporal_embed', 'use_temporal_emb')),
)
BERT_FUSION_SETTINGS: Settings = (
    ('num_layers', _layer_count('layers')),
    ('hidden_size', _dim('embeddings.word.weight', 1)),
    ('fusion_layer', _first_layer_with('cross_attn')),
    ('intermediate_size', _dim('layers.0.ffn.fc1.weight', 0)),
)


def architecture_mismatch(state: Mapping[str, Tensor], model: nn.Module, prefix: str = ''
                          ) -> Optional[Tuple[str, object, object]]:
    """The first ``(setting, weights' value, model's value)`` that differs between ``state`` (a state
    dict in the model's key layout, its keys under ``prefix``) and ``model``; ``None`` when every
    setting the weights hold agrees. ``setting`` is the encoder's path in the model and argument name,
    e.g. ``'vision_encoder.num_layers'``."""
    for name, module in model.named_modules():
        settings = getattr(module, 'architecture_settings', ())
        own = module.state_dict() if settings else {}
        where = prefix + (name + '.' if name else '')
        for setting, read in settings:
            theirs, ours = read(state, where, module), read(own, '', module)
            if theirs is not None and ours is not None and theirs != ours:
                return (name + '.' if name else '') + setting, theirs, ours
    return None


def check_architecture(state: Mapping[str, Tensor], model: nn.Module, source: str, owner: str,
                       prefix: str = '') -> None:
    """Raise :class:`ArchitectureMismatchError` when ``state`` was built for another architecture than
    ``model`` (see :func:`architecture_mismatch`). ``source`` names the weights and ``owner`` the model
    in the message (e.g. ``'model'`` or ``'VideoBEiT'``)."""
    mismatch = architecture_mismatch(state, model, prefix)
    if mismatch is not None:
        setting, theirs, ours = mismatch
        raise ArchitectureMismatchError(
            f'{source} was built for another architecture: {owner}.{setting} is {theirs} in the weights '
            f'but {ours} in the model (the first setting that differs). Build the model with the '
            f"weights' settings, or pass strict=False to load only the weights that fit (the rest keeps "
            f'its initialisation; a table of the keys is logged)')
