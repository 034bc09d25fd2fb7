"""Read and validate JSON annotation files; every error names the file, the entry index and the key."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Sequence


def read_json_list(path: str, expected: str) -> List[Any]:
    """The JSON list in ``path``; ``expected`` describes an entry for the error message.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: malformed JSON, or the top level is not a list.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            entries = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{path}: malformed JSON ({err})') from None
    if not isinstance(entries, list):
        raise ValueError(f'{path}: expected a JSON list of {expected} objects, got {type(entries).__name__}')
    return entries


def require_keys(path: str, index: int, entry: Any, keys: Sequence[str]) -> Dict[str, Any]:
    """``entry`` (entry ``index`` of ``path``) as a dict holding ``keys``; raises ``ValueError`` if not."""
    if not isinstance(entry, dict):
        raise ValueError(f'{path}: entry {index} must be an object with {", ".join(map(repr, keys))}, '
                         f'got {type(entry).__name__}')
    for key in keys:
        if key not in entry:
            raise ValueError(f'{path}: entry {index} has no "{key}" key')
    return entry


def media_path(path: str, index: int, key: str, value: Any, media_root: str) -> str:
    """Absolute, normalised path of the media file ``value`` (``entry[index][key]`` of ``path``), which
    must be a non-empty string naming a file inside ``media_root`` (absolute or relative to it).

    Raises:
        ValueError: ``value`` is not a non-empty string, or it leaves ``media_root`` (``../x.mp4``, an
            absolute path elsewhere).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'{path}: entry {index}: "{key}" must be a non-empty path string, got {value!r}')
    full = os.path.normpath(os.path.join(media_root, value))
    if os.path.commonpath([full, media_root]) != media_root:
        raise ValueError(f'{path}: entry {index}: "{key}" {value!r} is outside the media root '
                         f'{media_root}; media paths must be relative to it (or absolute inside it)')
    return full


def text_list(path: str, index: int, key: str, value: Any) -> List[str]:
    """``value`` (``entry[index][key]`` of ``path``: a string or a list of strings) as a list of strings.

    Raises:
        ValueError: not a non-empty string or a non-empty list of non-empty strings; names the item.
    """
    where = f'{path}: entry {index}'
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise ValueError(f'{where}: "{key}" must be a non-empty string or a non-empty list of strings, '
                         f'got {value!r}')
    for i, text in enumerate(texts):
        name = key if isinstance(value, str) else f'{key}[{i}]'
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'{where}: "{name}" must be a non-empty string, got {text!r}')
    return texts
