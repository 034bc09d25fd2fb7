"""The architecture of :class:`~.video_beit.VideoBEiT` from the Hugging Face ``config.json`` beside
pretrained BEiT weights (as :class:`~svitt_mm.models.text.BertFusionEncoder` reads BERT's).

A setting the user gives explicitly must agree with the file; one left out (``None``) is read from the
file, or takes VideoBEiT's default when there is no file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.resources import resolve_path

CONFIG_FILE = 'config.json'
# VideoBEiT argument -> HF BeitConfig attribute (mlp_ratio is intermediate_size / hidden_size).
CONFIG_FIELDS = {
    'img_size': 'image_size',
    'patch_size': 'patch_size',
    'in_channels': 'num_channels',
    'embed_dims': 'hidden_size',
    'num_layers': 'num_hidden_layers',
    'num_heads': 'num_attention_heads',
    'norm_eps': 'layer_norm_eps',
}
# VideoBEiT's architecture defaults (BEiT-base at 224 pixels), used when neither the user nor a
# config.json gives a setting.
DEFAULTS = dict(img_size=224, patch_size=16, in_channels=3, embed_dims=768, num_layers=12, num_heads=12,
                mlp_ratio=4.0, norm_eps=1e-12)
BEIT_MODEL_TYPES = ('beit', 'data2vec-vision')


def beit_config_file(pretrained: Optional[str]) -> Optional[Path]:
    """The ``config.json`` in the folder ``pretrained`` names, or beside the weights file it names
    (``package://`` specs resolved); ``None`` when there is none."""
    if pretrained is None:
        return None
    path = Path(resolve_path(str(pretrained))).expanduser()
    candidate = path / CONFIG_FILE if path.is_dir() else path.parent / CONFIG_FILE
    return candidate if candidate.is_file() else None


def read_beit_config(path: Path) -> Dict[str, Any]:
    """VideoBEiT's architecture arguments from the HF BEiT ``config.json`` at ``path``.

    Raises ``ValueError`` (naming the file) when it is not JSON or not a BEiT config.
    """
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputFileError(f'{path}: cannot read the BEiT config ({error})') from None
    model_type = config.get('model_type')
    if model_type not in BEIT_MODEL_TYPES:
        raise InputFileError(f'{path}: model_type is {model_type!r}, not a BEiT config ({BEIT_MODEL_TYPES}); '
                         f'VideoBEiT pretrained weights must be BEiT weights')
    arch = {ours: config[theirs] for ours, theirs in CONFIG_FIELDS.items() if theirs in config}
    if 'intermediate_size' in config and 'hidden_size' in config:
        arch['mlp_ratio'] = config['intermediate_size'] / config['hidden_size']
    return arch


def resolve_beit_architecture(explicit: Mapping[str, Any], pretrained: Optional[str],
                              strict: bool = True) -> Dict[str, Any]:
    """Every architecture argument of VideoBEiT (the keys of :data:`DEFAULTS`): the explicit value when
    not ``None``, else the ``config.json`` beside ``pretrained``'s, else the default.

    With ``strict``, raises ``ValueError`` naming the setting, both values and the file when an explicit
    value contradicts the file (``strict=False``: the explicit value wins).
    """
    config_path = beit_config_file(pretrained)
    from_file = read_beit_config(config_path) if config_path is not None else {}
    resolved = {}
    for key, default in DEFAULTS.items():
        value = explicit.get(key)
        if strict and value is not None and key in from_file and value != from_file[key]:
            field = CONFIG_FIELDS.get(key, 'intermediate_size / hidden_size')
            raise ValueError(
                f'VideoBEiT: {key}={value!r} contradicts the pretrained weights\' {config_path} ({field} '
                f'gives {key}={from_file[key]!r}); leave {key} out of the config (it is read from '
                f'config.json), use pretrained weights of the architecture you want, or pass strict=False '
                f'to build this architecture and load the weights that fit')
        resolved[key] = value if value is not None else from_file.get(key, default)
    return resolved
