"""Validate the entries of JSON annotation files (read with :func:`svitt_mm.utils.text.read_json_list`);
every error names the file, the entry index and the key."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence

from svitt_mm.utils.errors import InputFileError


def require_keys(path: str, index: int, entry: Any, keys: Sequence[str]) -> Dict[str, Any]:
    """``entry`` (entry ``index`` of ``path``) as a dict holding ``keys``; raises
    :class:`~svitt_mm.utils.errors.InputFileError` (a ``ValueError``) if not."""
    if not isinstance(entry, dict):
        raise InputFileError(f'{path}: entry {index} must be an object with {", ".join(map(repr, keys))}, '
                         f'got {type(entry).__name__}')
    for key in keys:
        if key not in entry:
            raise InputFileError(f'{path}: entry {index} has no "{key}" key')
    return entry


def media_path(path: str, index: int, key: str, value: Any, media_root: str) -> str:
    """Absolute, normalised path of the media file ``value`` (``entry[index][key]`` of ``path``), which
    must be a non-empty string naming a file inside ``media_root`` (absolute or relative to it).

    Raises:
        InputFileError: (a ``ValueError``) ``value`` is not a non-empty string, or it leaves
            ``media_root`` (``../x.mp4``, an absolute path elsewhere).
    """
    if not isinstance(value, str) or not value.strip():
        raise InputFileError(f'{path}: entry {index}: "{key}" must be a non-empty path string, got {value!r}')
    full = os.path.normpath(os.path.join(media_root, value))
    if os.path.commonpath([full, media_root]) != media_root:
        raise InputFileError(f'{path}: entry {index}: "{key}" {value!r} is outside the media root '
                         f'{media_root}; media paths must be relative to it (or absolute inside it)')
    return full


def text_list(path: str, index: int, key: str, value: Any) -> List[str]:
    """``value`` (``entry[index][key]`` of ``path``: a string or a list of strings) as a list of strings.

    Raises:
        InputFileError: (a ``ValueError``) not a non-empty string or a non-empty list of non-empty
            strings; names the item.
    """
    where = f'{path}: entry {index}'
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise InputFileError(f'{where}: "{key}" must be a non-empty string or a non-empty list of strings, '
                         f'got {value!r}')
    for i, text in enumerate(texts):
        name = key if isinstance(value, str) else f'{key}[{i}]'
        if not isinstance(text, str) or not text.strip():
            raise InputFileError(f'{where}: "{name}" must be a non-empty string, got {text!r}')
    return texts
