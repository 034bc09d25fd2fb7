"""SViTT's block pattern: a window of local blocks and random others."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from svitt_mm.registry import ATTENTION_PATTERNS
from svitt_mm.utils.arg_checks import check_arguments, int_at_least, odd_or_zero

from .block_layout import num_slots, sparse_block_index
from .block_pattern import BlockPattern


@ATTENTION_PATTERNS.register_module()
class LocalRandomBlocks(BlockPattern):
    """Query block ``m`` sees a window of ``local_blocks`` blocks centred on itself (truncated at the ends,
    no wrap-around) and ``random_blocks`` further blocks drawn uniformly without replacement from outside the
    window (every block once where fewer remain).

    The draw is :func:`~.block_layout.sparse_block_index` on ``generator``'s device (``device`` when there is
    no generator), so the operator's random state is consumed exactly as before patterns were plugins.

    Args:
        local_blocks: window size in blocks, 0 or odd.
        random_blocks: random blocks per query block, ``>= 0``.
    """

    argument_checks = dict(local_blocks=odd_or_zero, random_blocks=int_at_least(0))

    def __init__(self, local_blocks: int = 1, random_blocks: int = 3) -> None:
        check_arguments(self, local_blocks=local_blocks, random_blocks=random_blocks)
        self.local_blocks = local_blocks
        self.random_blocks = random_blocks

    def block_index(self, num_blocks: int, training: bool, generator: Optional[torch.Generator] = None,
                    device: Optional[torch.device] = None) -> Tensor:
        draw_device = generator.device if generator is not None else device
        return sparse_block_index(num_blocks, self.local_blocks, self.random_blocks, draw_device, generator)

    def max_slots(self, num_blocks: int) -> int:
        return num_slots(num_blocks, self.local_blocks, self.random_blocks)
