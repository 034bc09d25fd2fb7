"""The ``cpu_kernel`` backend: block-sparse attention by a C++ kernel on CPU (float32, forward and backward).

The gather backend copies every query block's keys and values into ``[B, H * M, C, D]`` tensors (four times
the keys at SViTT's setting, written to and read back from memory) before one SDPA call. The kernel
(``../csrc/block_sparse_cpu.cpp``) runs one task per (batch, head, block) that copies only its own block's keys
and values into a buffer that stays in cache, runs two BLAS products around a softmax there, and writes its
outputs token-major ``[B, N - G, H, D]``, the layout the output projection reads. The backward pass recomputes
the probabilities from the saved log-sum-exp, so nothing of size ``[M, bs, C]`` per head is stored for it
(unless the pair bias needs its gradient). The global queries run in PyTorch.

The kernel is compiled on first use by torch's C++ extension builder (needs a C++ compiler and ninja; about
10 s, then cached under ``TORCH_EXTENSIONS_DIR``). Where it cannot be built, :func:`kernel_build_error` says
why, and that is this backend's reason not to run.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sysconfig
import time
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from ..base import PairBias
from ..block_layout import BlockLayout, KeyTables
from .base import AttentionBackend, AttentionCall
from .gather import global_attention
from .kernel_inputs import kernel_local_mask, mask_gradient

KERNEL_SOURCE = Path(__file__).parent.parent / 'csrc' / 'block_sparse_cpu.cpp'
BUILD_LOG_CHARS = 2000  # how much of a failed build's log the reason keeps


def ninja_on_path() -> bool:
    """Whether ``ninja`` (torch's extension builder) can be run; puts this environment's scripts folder
    (where ``pip install ninja`` puts it) on ``PATH`` when it is only there."""
    if shutil.which('ninja'):
        return True
    scripts = sysconfig.get_path('scripts')
    if shutil.which('ninja', path=scripts):
        os.environ['PATH'] = os.pathsep.join([scripts, os.environ.get('PATH', '')])
        return True
    return False


@functools.lru_cache(maxsize=None)
def kernel_build_error() -> Optional[str]:
    """Build (once per machine and source version) and load the kernel into ``torch.ops.svitt_mm``.

    Returns ``None`` when it is ready, else why it could not be built or loaded (also warned once).
    """
    capability = torch.backends.cpu.get_cpu_capability()
    flags = ['-O3', '-fopenmp', '-fno-math-errno', '-fno-trapping-math']
    if capability in ('AVX2', 'AVX512'):
        flags += ['-mavx2', '-mfma']
    logger = logging.getLogger('torch.utils.cpp_extension')
    level = logger.level
    logger.setLevel(logging.ERROR)  # its import logs where it looked for CUDA, which a CPU build never uses
    start = time.perf_counter()
    try:
        if not ninja_on_path():
            raise RuntimeError('ninja is not installed (pip install ninja)')
        from torch.utils.cpp_extension import load
        load(name=f'svitt_mm_block_sparse_cpu_{capability.lower()}', sources=[str(KERNEL_SOURCE)],
             extra_cflags=flags, extra_ldflags=['-fopenmp'], is_python_module=False)
    except (ImportError, OSError, RuntimeError, subprocess.SubprocessError) as error:
        cause = str(error).strip()
        if len(cause) > BUILD_LOG_CHARS:  # a compiler log: its end names the error
            cause = '...' + cause[-BUILD_LOG_CHARS:]
        warnings.warn(f"block-sparse backend 'cpu_kernel': could not build the C++ kernel {KERNEL_SOURCE} "
                      f'({cause})')
        return f'the C++ kernel could not be built ({cause})'
    finally:
        logger.setLevel(level)
    print_log(f"block-sparse backend 'cpu_kernel': C++ kernel ready in {time.perf_counter() - start:.1f} s "
              '(compiled on first use per machine and source version, then loaded from the cache)',
              logger='current')
    return None


def kernel_mask(mask: Optional[Tensor], batch: int, heads: int, block_size: int) -> Optional[Tensor]:
    """``mask`` ``[B or 1, H or 1, M, bs or 1, C]`` as the kernel reads it: expanded to
    ``[B, H, M, bs, C]`` (broadcast dimensions keep stride 0) with unit stride in ``C``."""
    if mask is None:
        return None
    if mask.stride(-1) != 1:
        mask = mask.contiguous()
    return mask.expand(batch, heads, -1, block_size, -1)


class CpuLocalAttention(torch.autograd.Function):
    """Local-query attention through the C++ kernel: token-major outputs ``[B, N - G, H, D]`` from
    ``q, k, v [B, H, N, D]``, the additive local mask (or ``None``) and the int32 key table ``[M, C]``."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], key_index: Tensor,
                num_global: int, block_size: int) -> Tensor:
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        batch, heads = q.shape[:2]
        out, lse = torch.ops.svitt_mm.block_sparse_forward(
            q, k, v, key_index, kernel_mask(mask, batch, heads, block_size), num_global, block_size)
        ctx.save_for_backward(q, k, v, out, lse, key_index, mask)
        ctx.setup = (num_global, block_size)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        q, k, v, out, lse, key_index, mask = ctx.saved_tensors
        num_global, block_size = ctx.setup
        mask_grad = mask is not None and ctx.needs_input_grad[3]
        batch, heads = q.shape[:2]
        grad_q, grad_k, grad_v, grad_pairs = torch.ops.svitt_mm.block_sparse_backward(
            grad_out.contiguous(), q, k, v, out, lse, key_index, kernel_mask(mask, batch, heads, block_size),
            num_global, block_size, mask_grad)
        grad_mask = mask_gradient(grad_pairs, mask) if mask_grad else None
        return grad_q, grad_k, grad_v, grad_mask, None, None, None


class CpuKernelBackend(AttentionBackend):
    """Local queries through :class:`CpuLocalAttention`, global ones in PyTorch, joined token-major (the
    kernel's layout, and the projection's) and returned as a ``[B, H, N, D]`` view."""

    name = 'cpu_kernel'
    devices = {'cpu': ''}
    dtypes = (torch.float32,)
    gradient_devices = ('cpu',)
    auto_devices = ('cpu',)

    def extra_reasons(self, call: AttentionCall) -> List[str]:
        reasons = []
        if call.compiling:
            reasons.append('the C++ kernel cannot be traced by torch.compile (it has no fake-tensor version)')
        error = kernel_build_error()
        return reasons + ([error] if error else [])

    def attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout, tables: KeyTables,
                  key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        out_global, probs = global_attention(q, k, v, num_global, key_padding_mask, bias)
        mask = kernel_local_mask(q, num_global, layout, tables, key_padding_mask, bias)
        out_local = CpuLocalAttention.apply(q, k, v, mask, tables.kernel, num_global, layout.block_size)
        out = torch.cat([out_global.transpose(1, 2), out_local], dim=1)
        return out.transpose(1, 2), probs
