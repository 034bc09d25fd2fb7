"""Measuring the cost of a computation: FLOPs (torch's ``FlopCounterMode``) and peak resident memory on
CPU (Linux ``/proc``). Wall-clock time is measured with ``torch.utils.benchmark.Timer`` by the tools."""
from __future__ import annotations

import ctypes
import gc
import os.path as osp
from typing import Callable, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from svitt_mm.models.attention.flop_counting import flop_counting

aten = torch.ops.aten


def _cpu_sdpa_flops(query, key, value, *args, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's counter knows the CUDA attention kernels but not the fused CPU one, which
# scaled_dot_product_attention dispatches to on CPU; without these, attention would count as 0 FLOPs.
CPU_SDPA_FLOP_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flops,
}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (multiply-adds count 2) of the matrix products and attention kernels run by ``fn()``.

    Elementwise ops, softmax and normalisation are not counted (torch's convention). Attention through
    ``scaled_dot_product_attention`` counts ``4 * B * H * Nq * Nk * D`` forward for the shapes it is given,
    so block-sparse operators that gather key blocks count only the pairs they compute. Operators that
    torch's counter cannot run (``flex_attention`` in torch 2.14, Triton, the C++ kernel) check
    :func:`~svitt_mm.models.attention.flop_counting.counting_flops` and take an equivalent counted path.
    """
    counter = FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FLOP_FORMULAS)
    with flop_counting(), counter:
        fn()
    return int(counter.get_total_flops())


def _rss_kib(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in KiB, from ``/proc/self/status``."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not found in /proc/self/status')


def peak_rss_mb(fn: Callable[[], object]) -> Optional[float]:
    """Peak growth of this process' resident memory (MiB) while ``fn()`` runs, or ``None`` where Linux'
    ``/proc/self/clear_refs`` cannot reset the high-water mark.

    Freed memory is first returned to the OS (``gc``, glibc ``malloc_trim``); then ``VmHWM`` is reset to
    the current RSS, ``fn()`` runs, and the result is ``VmHWM - RSS before``: every page the call touched
    at its peak, allocator overhead included (what ``torch.cuda.max_memory_allocated`` measures on GPU,
    plus fragmentation).
    """
    if not osp.exists('/proc/self/clear_refs'):
        return None
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    before = _rss_kib('VmRSS')
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        return None
    fn()
    return (_rss_kib('VmHWM') - before) / 1024
