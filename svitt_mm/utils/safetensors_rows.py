"""Safetensors files too large for memory: read them memory-mapped, and concatenate files row-wise by
copying bytes, so that a feature file of any size is written and read in bounded memory.

The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
header ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`` and the
tensors' bytes (row-major) after it, offsets relative to the end of the header.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from svitt_mm.utils.errors import InputFileError, MissingFileError

# safetensors dtype name -> numpy dtype (the dtypes feature files use)
DTYPES = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64, 'I64': np.int64, 'I32': np.int32,
          'U8': np.uint8, 'BOOL': np.bool_}
COPY_BYTES = 64 << 20  # bytes copied at a time


def read_header(path: str) -> Tuple[Dict[str, dict], Dict[str, str], int]:
    """``(tensors' header entries, metadata, offset of the data in the file)`` of a safetensors file.

    Raises ``MissingFileError`` when ``path`` does not exist, ``InputFileError`` (a ``ValueError``) naming the
    file when it is not a safetensors file.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f'safetensors file not found: {path}')
    with open(path, 'rb') as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise InputFileError(f'{path}: not a safetensors file (only {len(prefix)} bytes)')
        (length,) = struct.unpack('<Q', prefix)
        try:
            header = json.loads(f.read(length))
        except ValueError as error:
            raise InputFileError(f'{path}: not a safetensors file (bad header: {error})') from None
    metadata = header.pop('__metadata__', None) or {}
    return header, metadata, 8 + length


def read_tensors(path: str) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Every tensor of ``path``, memory-mapped (pages are read when used; writes stay in memory), and
    the file's metadata."""
    header, metadata, start = read_header(path)
    tensors = {}
    for name, entry in header.items():
        begin, end = entry['data_offsets']
        shape = tuple(entry['shape'])
        if end == begin:
            tensors[name] = torch.from_numpy(np.zeros(shape, DTYPES[entry['dtype']]))
            continue
        array = np.memmap(path, DTYPES[entry['dtype']], mode='c', offset=start + begin, shape=shape)
        tensors[name] = torch.from_numpy(array)
    return tensors, metadata


def _write_header(f, entries: Dict[str, dict], metadata: Dict[str, str]) -> None:
    header = json.dumps({'__metadata__': metadata, **entries}, separators=(',', ':')).encode()
    header += b' ' * (-len(header) % 8)  # the data starts 8-byte aligned
    f.write(struct.pack('<Q', len(header)))
    f.write(header)


def concat_rows(sources: Sequence[str], out: str, metadata: Dict[str, str]) -> None:
    """Write ``out``: every tensor of the ``sources`` (safetensors files holding the same tensor names,
    each with the same dtype and trailing shape in all of them, except sources where it is empty)
    concatenated along dim 0, in source order, with ``metadata``. Bytes are copied in chunks; ``out`` is written to a temporary file and
    renamed, so it is never left half-written."""
    headers = [read_header(path) for path in sources]
    names = sorted(headers[0][0])
    entries: Dict[str, dict] = {}
    offset = 0
    for name in names:
        parts = [header[name] for header, _, _ in headers
                 if header[name]['data_offsets'][1] > header[name]['data_offsets'][0]] or [headers[0][0][name]]
        kinds = {(part['dtype'], tuple(part['shape'][1:])) for part in parts}
        if len(kinds) != 1:
            raise ValueError(f'concat_rows: tensor {name!r} differs in dtype or trailing shape across '
                             f'{list(sources)}: {sorted(kinds)}')
        size = sum(part['data_offsets'][1] - part['data_offsets'][0] for part in parts)
        shape = [sum(part['shape'][0] for part in parts)] + list(parts[0]['shape'][1:])
        entries[name] = dict(dtype=parts[0]['dtype'], shape=shape, data_offsets=[offset, offset + size])
        offset += size
    tmp = out + '.tmp'
    with open(tmp, 'wb') as f:
        _write_header(f, entries, metadata)
        for name in names:
            for path, (header, _, start) in zip(sources, headers):
                begin, end = header[name]['data_offsets']
                with open(path, 'rb') as src:
                    src.seek(start + begin)
                    remaining = end - begin
                    while remaining:
                        chunk = src.read(min(COPY_BYTES, remaining))
                        f.write(chunk)
                        remaining -= len(chunk)
    os.replace(tmp, out)

