"""The former backend-named operators, kept as aliases of ``BlockSparseAttention(backend=...)`` so that
existing configs (``configs/svitt_16f_{cpu,triton,flex}.py``) and checkpoints keep working."""
from __future__ import annotations

from typing import Optional

from svitt_mm.registry import ATTENTION_OPS

from .block_sparse import BlockSparseAttention


@ATTENTION_OPS.register_module()
class CpuBlockSparseAttention(BlockSparseAttention):
    """``BlockSparseAttention(backend='cpu_kernel', **kwargs)``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(backend='cpu_kernel', **kwargs)


@ATTENTION_OPS.register_module()
class TritonBlockSparseAttention(BlockSparseAttention):
    """``BlockSparseAttention(backend='triton', **kwargs)``; ``block_n``, ``num_warps``, ``num_stages`` are
    the backend's options (:class:`~.backends.triton.TritonBackend`)."""

    def __init__(self, block_n: Optional[int] = None, num_warps: int = 4, num_stages: int = 2, **kwargs) -> None:
        options = dict(block_n=block_n, num_warps=num_warps, num_stages=num_stages)
        super().__init__(backend='triton', backend_options=dict(triton=options), **kwargs)


@ATTENTION_OPS.register_module()
class FlexBlockSparseAttention(BlockSparseAttention):
    """``BlockSparseAttention(backend='flex', **kwargs)``; ``flex_block_size`` and ``compile`` are the
    backend's options (:class:`~.backends.flex.FlexBackend`)."""

    def __init__(self, flex_block_size: Optional[int] = None, compile: bool = True, **kwargs) -> None:
        options = dict(flex_block_size=flex_block_size, compile=compile)
        super().__init__(backend='flex', backend_options=dict(flex=options), **kwargs)
