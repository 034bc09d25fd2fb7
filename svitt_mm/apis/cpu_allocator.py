"""Keep freed CPU memory for reuse (glibc ``malloc``), so that the large tensors a step allocates and frees
(gathered key/value blocks, their gradients) are not page-faulted in again on every call.

By default glibc serves allocations above a dynamic threshold (at most 32 MiB) with ``mmap`` and returns
them to the OS on ``free``: each new one costs a page fault per 4 KiB. The block-sparse operator's
gathered blocks are tens of MiB at 16 frames, so on CPU it spends much of its time in those faults. Raising
the thresholds keeps such memory in the heap, as jemalloc or tcmalloc would.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
RETAIN_BYTES = 1 << 30


def retain_freed_memory(limit_bytes: int = RETAIN_BYTES) -> bool:
    """Serve allocations below ``limit_bytes`` from glibc's heap and keep up to ``limit_bytes`` of freed
    memory there. Process-wide, and inherited by forked data-loader workers.

    Returns:
        ``True`` when glibc accepted both settings; ``False`` where there is no glibc (macOS, musl).
    """
    name = ctypes.util.find_library('c')
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, limit_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, limit_bytes))
