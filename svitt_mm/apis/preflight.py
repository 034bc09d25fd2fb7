"""Check, before anything is built, that the files a config needs exist.

A config declares what it needs in top-level dicts named ``required_*`` (one per ``_base_`` file, e.g.
``required_model_inputs`` and ``required_data_inputs``), each mapping a dotted config key to a hint saying
where that input comes from, e.g.::

    required_model_inputs = {
        'train_dataloader.dataset.ann_file': 'WebVid-2M annotations (docs/datasets.md#webvid)',
        'model.text_encoder.pretrained': 'huggingface-cli download bert-base-uncased --local-dir ...',
    }

Each value is checked as a local path (``package://`` specs resolved) or, failing that, as a model already
in the Hugging Face cache. All missing inputs are reported together, each with its key, value and hint.
"""
from __future__ import annotations

import os
from typing import List

from mmengine.config import Config

from svitt_mm.utils.errors import UserError
from svitt_mm.utils.resources import resolve_path


class MissingInputError(UserError, FileNotFoundError):
    """Raised when inputs named in ``required_*`` dicts are not available."""


def _lookup(cfg: Config, dotted_key: str):
    node = cfg
    for part in dotted_key.split('.'):
        if node is None or part not in node:
            return None
        node = node[part]
    return node


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(name, 'config.json'), str)
    except Exception:  # not a valid repo id: it is a (missing) path
        return False


def is_available(value: str) -> bool:
    try:
        path = resolve_path(value)
    except FileNotFoundError:
        return False
    return os.path.exists(path) or _in_hf_cache(value)


def check_required_inputs(cfg: Config, config_path: str = '') -> None:
    """Raise :class:`MissingInputError` listing every missing input named in ``cfg.required_*``."""
    problems: List[str] = []
    declared = {}
    for name in cfg.keys():
        if name.startswith('required_') and isinstance(cfg[name], dict):
            declared.update(cfg[name])
    for key, hint in declared.items():
        value = _lookup(cfg, key)
        if value is None:
            continue  # the key was removed (e.g. --no-validate drops the val dataloader)
        if not is_available(value):
            problems.append(f'  {key} = {value!r} was not found.\n    -> {hint}')
    if problems:
        where = f' of {config_path}' if config_path else ''
        raise MissingInputError(
            f'{len(problems)} input(s){where} are missing:\n' + '\n'.join(problems) +
            '\nDownload them, or point the keys elsewhere with --cfg-options KEY=PATH.')
