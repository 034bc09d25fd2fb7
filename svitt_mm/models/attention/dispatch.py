"""Choose a block-sparse backend for a call, and say why.

``backend='auto'`` takes the first backend of :data:`~.backends.BACKENDS` (the priority order: ``triton``,
``cpu_kernel``, ``flex``, ``gather``) that can compute the call and that ``'auto'`` may pick on its device.
The choice, with why each backend before it was passed over, is logged once per distinct
(request, call) situation. A backend named explicitly that cannot run raises ``ValueError`` with its reasons;
nothing falls back silently.

One substitution is made on purpose: while a FLOP count runs (:func:`~.flop_counting.counting_flops`), the
``gather`` backend computes the call whatever was asked for, because torch's counter cannot see inside
the fused kernels; ``gather`` computes the same pairs, so the count is the pattern's. It is logged too.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Set, Tuple

from mmengine.logging import print_log

from .backends import AttentionBackend, AttentionCall
from .flop_counting import counting_flops

_LOGGED: Set[Tuple[str, AttentionCall, bool]] = set()


def log_once(requested: str, call: AttentionCall, counting: bool, message: str) -> None:
    """Log ``message`` the first time this (request, call, counting) situation is seen in the process."""
    key = (requested, call, counting)
    if key not in _LOGGED:
        _LOGGED.add(key)
        print_log(message, logger='current')


def passed_over(backends: Mapping[str, AttentionBackend], call: AttentionCall) -> Tuple[str, Dict[str, List[str]]]:
    """``(the backend 'auto' picks, {name: reasons} of those before it)``."""
    skipped: Dict[str, List[str]] = {}
    for name, backend in backends.items():
        reasons = backend.not_supported_reasons(call) or backend.auto_reasons(call)
        if not reasons:
            return name, skipped
        skipped[name] = reasons
    details = '; '.join(f'{name}: {", ".join(reasons)}' for name, reasons in skipped.items())
    raise ValueError(f'BlockSparseAttention: no backend can compute {call} ({details})')


def choose_backend(backends: Mapping[str, AttentionBackend], requested: str, call: AttentionCall) -> str:
    """Name of the backend that computes ``call`` when ``requested`` (``'auto'`` or a backend name).

    Raises:
        ValueError: ``requested`` names a backend that cannot compute ``call``; the message lists why.
    """
    if counting_flops():
        log_once(requested, call, True, f"BlockSparseAttention: FLOP count on {call}: backend 'gather' computes "
                 f"(asked for {requested!r}; torch's FLOP counter cannot see inside the fused kernels, and gather "
                 'computes the same pairs)')
        return 'gather'
    if requested != 'auto':
        reasons = backends[requested].not_supported_reasons(call)
        if reasons:
            raise ValueError(f"BlockSparseAttention: backend {requested!r} cannot compute this call ({call}): "
                             + '; '.join(reasons))
        log_once(requested, call, False, f'BlockSparseAttention: backend {requested!r} (as configured) on {call}')
        return requested
    chosen, skipped = passed_over(backends, call)
    why = ''.join(f'; passed over {name}: {", ".join(reasons)}' for name, reasons in skipped.items())
    log_once(requested, call, False, f"BlockSparseAttention: backend='auto' chose {chosen!r} on {call}{why}")
    return chosen
