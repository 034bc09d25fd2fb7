"""A fixed strided block pattern (Child et al., 2019, at block granularity, both directions)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from svitt_mm.registry import ATTENTION_PATTERNS
from svitt_mm.utils.arg_checks import check_arguments, int_at_least, odd_or_zero

from .block_layout import window_mask
from .block_pattern import BlockPattern


@ATTENTION_PATTERNS.register_module()
class StridedBlocks(BlockPattern):
    """Query block ``m`` sees every block ``j`` with ``(j - m) % stride == 0`` and a window of
    ``local_blocks`` blocks centred on itself. Deterministic: training and evaluation see the same table.

    With raster token order and ``stride`` = blocks per frame, each block sees the same place in every frame.

    Args:
        stride: distance between the blocks a query block sees, ``>= 2``.
        local_blocks: window size in blocks, 0 or odd.
    """

    argument_checks = dict(stride=int_at_least(2), local_blocks=odd_or_zero)

    def __init__(self, stride: int = 4, local_blocks: int = 1) -> None:
        check_arguments(self, stride=stride, local_blocks=local_blocks)
        self.stride = stride
        self.local_blocks = local_blocks

    def block_index(self, num_blocks: int, training: bool, generator: Optional[torch.Generator] = None,
                    device: Optional[torch.device] = None) -> Tensor:
        block = torch.arange(num_blocks, device=device)
        allowed = window_mask(num_blocks, self.local_blocks, device)
        allowed |= (block[:, None] - block[None, :]) % self.stride == 0
        return torch.where(allowed, block, -1)
