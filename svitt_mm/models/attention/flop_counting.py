"""The switch that tells attention operators a FLOP count is running.

torch's ``FlopCounterMode`` cannot look inside ``flex_attention``, Triton or the C++ kernel, so while a
count runs those operators take a path it can count (same maths, same pairs). Whoever counts
(``svitt_mm.apis.cost.count_flops``) wraps the call in :func:`flop_counting`; operators ask
:func:`counting_flops`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

_COUNTING_FLOPS = False


def counting_flops() -> bool:
    """Whether a FLOP count is running (see :func:`flop_counting`)."""
    return _COUNTING_FLOPS


@contextlib.contextmanager
def flop_counting() -> Iterator[None]:
    """Mark the body as running under a FLOP counter (restored on exit, also after an error)."""
    global _COUNTING_FLOPS
    previous, _COUNTING_FLOPS = _COUNTING_FLOPS, True
    try:
        yield
    finally:
        _COUNTING_FLOPS = previous
