"""The backend support table of the README, written from the backends' declarations."""
from __future__ import annotations

from .backends import BACKENDS, AttentionBackend


def _devices(backend: AttentionBackend) -> str:
    if backend.devices is None:
        return 'any'
    return ', '.join(f'{device} ({note})' if note else device for device, note in backend.devices.items())


def _listed(values, everywhere: str) -> str:
    if values is None:
        return everywhere
    return ', '.join(str(value).replace('torch.', '') for value in values) or 'none'


def backend_support_table() -> str:
    """Markdown table: one row per backend in ``backend='auto'``'s priority order."""
    lines = ['| priority | backend | devices | dtypes | gradients | bias | key padding | `auto` picks it on |',
             '|---|---|---|---|---|---|---|---|']
    for rank, backend in enumerate(BACKENDS.values(), start=1):
        lines.append(f'| {rank} | `{backend.name}` | {_devices(backend)} | {_listed(backend.dtypes, "any floating")} | '
                     f'{_listed(backend.gradient_devices, "yes")} | yes | yes | '
                     f'{_listed(backend.auto_devices, "any device")} |')
    return '\n'.join(lines)
