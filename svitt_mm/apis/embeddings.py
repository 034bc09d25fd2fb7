"""Encoded videos and texts, and the feature file that holds encoded videos.

Feature file (safetensors, written by :meth:`VideoEmbeddings.save` and ``tools/extract_features.py``):

* ``video_embeddings`` ``[N, E]`` float32: the contrastive embeddings, one row per video (each clip's
  embedding is unit-norm; with K > 1 clips per video the row is their mean, which scores exactly as
  the clips' mean cosine similarity does in evaluation);
* ``video_clip_embeddings`` ``[N, K, E]``: the per-clip embeddings;
* ``video_tokens`` ``[N, K, 1+P, C]``: the visual tokens the matching head re-ranks with;
* metadata: ``ids`` (JSON list of the N video ids, in row order: the paths as given), ``failed`` (JSON
  object: id of each video that could not be decoded -> reason), ``config`` and ``checkpoint`` (what
  the features came from) and ``format``.

A video's id is its path as given (or the annotation's ``video`` field).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List

from safetensors.torch import save_file
from torch import Tensor

from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.safetensors_rows import read_tensors

VIDEO_FORMAT = 'svitt_mm.video_embeddings/1'
TEXT_FORMAT = 'svitt_mm.text_embeddings/1'
VIDEO_TENSORS = ('video_embeddings', 'video_clip_embeddings', 'video_tokens')


@dataclass
class VideoEmbeddings:
    """Encoded videos, on the CPU (see the module docstring for the tensors).

    ``ids``: one per row; ``failed``: id -> reason of the videos left out because they could not be
    decoded; ``source``: ``config`` and ``checkpoint`` they were encoded with.
    """
    ids: List[str]
    embeddings: Tensor
    clip_embeddings: Tensor
    tokens: Tensor
    failed: Dict[str, str] = field(default_factory=dict)
    source: Dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def metadata(self) -> Dict[str, str]:
        """The feature file's metadata (all strings)."""
        return dict(format=VIDEO_FORMAT, ids=json.dumps(self.ids), failed=json.dumps(self.failed),
                    config=self.source.get('config', ''), checkpoint=self.source.get('checkpoint', ''))

    def save(self, path: str) -> None:
        """Write the feature file ``path`` (``.safetensors``)."""
        save_file(dict(video_embeddings=self.embeddings.contiguous(),
                       video_clip_embeddings=self.clip_embeddings.contiguous(),
                       video_tokens=self.tokens.contiguous()), path, metadata=self.metadata())

    @classmethod
    def load(cls, path: str) -> 'VideoEmbeddings':
        """Read a feature file, memory-mapped (an index larger than memory can be searched).

        Raises ``ValueError`` naming the file when it is not a video feature file.
        """
        tensors, metadata = read_tensors(path)
        absent = [name for name in VIDEO_TENSORS if name not in tensors] + (
            [] if 'ids' in metadata else ['metadata "ids"'])
        if absent:
            raise InputFileError(f'{path}: not a svitt_mm video feature file (no {", ".join(absent)}); write one '
                             f'with tools/extract_features.py or VideoEmbeddings.save')
        ids = json.loads(metadata['ids'])
        if len(ids) != tensors['video_embeddings'].shape[0]:
            raise InputFileError(f'{path}: {len(ids)} ids for {tensors["video_embeddings"].shape[0]} rows')
        return cls(ids=ids, embeddings=tensors['video_embeddings'],
                   clip_embeddings=tensors['video_clip_embeddings'], tokens=tensors['video_tokens'],
                   failed=json.loads(metadata.get('failed', '{}')),
                   source=dict(config=metadata.get('config', ''), checkpoint=metadata.get('checkpoint', '')))


@dataclass
class TextEmbeddings:
    """Encoded texts, on the CPU: ``texts`` (as given), ``embeddings [M, E]`` (unit-norm contrastive
    embeddings), ``states [M, L, D]`` and ``mask [M, L]`` (the text-only layers' output and its padding
    mask, what the matching head re-ranks with)."""
    texts: List[str]
    embeddings: Tensor
    states: Tensor
    mask: Tensor

    def __len__(self) -> int:
        return len(self.texts)

    def save(self, path: str) -> None:
        """Write ``path`` (``.safetensors``: ``text_embeddings``, ``text_states``, ``text_mask``, and the
        texts as a JSON list in the metadata)."""
        save_file(dict(text_embeddings=self.embeddings.contiguous(), text_states=self.states.contiguous(),
                       text_mask=self.mask.contiguous()), path,
                  metadata=dict(format=TEXT_FORMAT, texts=json.dumps(self.texts)))

    @classmethod
    def load(cls, path: str) -> 'TextEmbeddings':
        """Read a file written by :meth:`save`."""
        tensors, metadata = read_tensors(path)
        if metadata.get('format') != TEXT_FORMAT:
            raise InputFileError(f'{path}: not a svitt_mm text embeddings file (format '
                             f'{metadata.get("format")!r}); write one with TextEmbeddings.save')
        return cls(texts=json.loads(metadata['texts']), embeddings=tensors['text_embeddings'],
                   states=tensors['text_states'], mask=tensors['text_mask'])
