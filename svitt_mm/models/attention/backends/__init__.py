"""Block-sparse backends, in ``backend='auto'``'s priority order (fastest first where each runs).

* ``triton``: fused kernels reading keys in place (CUDA; on CPU only in Triton's interpreter, for tests).
* ``cpu_kernel``: the C++ kernel (CPU, float32).
* ``flex``: ``flex_attention`` with the layout as its block mask (CUDA; CPU forward only).
* ``gather``: gathered key/value blocks through one SDPA call (anything, the reference path).
"""
from .base import AttentionBackend, AttentionCall, describe_call
from .cpu_kernel import CpuKernelBackend
from .flex import FlexBackend
from .gather import GatherBackend
from .triton import TritonBackend

BACKENDS = {backend.name: backend for backend in (TritonBackend, CpuKernelBackend, FlexBackend, GatherBackend)}

__all__ = ['AttentionBackend', 'AttentionCall', 'BACKENDS', 'CpuKernelBackend', 'FlexBackend', 'GatherBackend',
           'TritonBackend', 'describe_call']
