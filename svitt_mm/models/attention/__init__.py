from .backend_aliases import CpuBlockSparseAttention, FlexBlockSparseAttention, TritonBlockSparseAttention
from .backends import BACKENDS, AttentionBackend, AttentionCall
from .base import AttentionOp, BiasTable, PairBias
from .block_layout import BlockLayout
from .block_pattern import BlockPattern
from .block_sparse import BlockSparseAttention
from .dense import DenseAttention
from .fused_bias_dense import FusedBiasDenseAttention
from .local_random_blocks import LocalRandomBlocks
from .strided_blocks import StridedBlocks
from .support_table import backend_support_table

__all__ = ['AttentionBackend', 'AttentionCall', 'AttentionOp', 'BACKENDS', 'BiasTable', 'BlockLayout', 'BlockPattern',
           'BlockSparseAttention', 'CpuBlockSparseAttention', 'DenseAttention', 'FlexBlockSparseAttention',
           'FusedBiasDenseAttention',
           'LocalRandomBlocks', 'PairBias', 'StridedBlocks', 'TritonBlockSparseAttention', 'backend_support_table']
