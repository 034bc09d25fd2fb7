from .base import AttentionOp, PairBias
from .block_layout import BlockLayout
from .block_sparse import BlockSparseAttention
from .cpu_block_sparse import CpuBlockSparseAttention
from .dense import DenseAttention
from .flex_block_sparse import FlexBlockSparseAttention
from .triton_block_sparse import TritonBlockSparseAttention

__all__ = ['AttentionOp', 'PairBias', 'BlockLayout', 'BlockSparseAttention', 'CpuBlockSparseAttention',
           'DenseAttention', 'FlexBlockSparseAttention', 'TritonBlockSparseAttention']
