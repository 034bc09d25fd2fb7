"""The base class of block patterns: which local key blocks each local query block sees.

A pattern is registered in ``ATTENTION_PATTERNS`` and answers one question, in :meth:`BlockPattern.block_index`.
:class:`~.block_sparse.BlockSparseAttention` turns the answer into a :class:`~.block_layout.BlockLayout`
(rows sorted, repeats removed), and every backend computes attention from that layout, so a new pattern
runs on every backend without further code.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class BlockPattern:
    """Base class of block patterns (see the module docstring).

    Subclasses take their own settings as constructor arguments (nothing else) and implement
    :meth:`block_index`. The local tokens are cut, in their current order, into ``num_blocks`` blocks of the
    operator's ``block_size``; global tokens are outside the pattern (every query sees them).
    """

    def block_index(self, num_blocks: int, training: bool, generator: Optional[torch.Generator] = None,
                    device: Optional[torch.device] = None) -> Tensor:
        """Key block ids per query block.

        Args:
            num_blocks: ``M``, the number of local blocks.
            training: whether the operator is in training mode. In training a pattern may draw afresh at each
                call (from ``generator``, torch's global RNG when it is ``None``); in evaluation the operator
                passes a generator seeded from its ``eval_seed`` and ``layer_index``, so a pattern that draws
                only from ``generator`` is deterministic there.
            generator: random source, or ``None``.
            device: where the operator computes (the table may be made elsewhere; it is moved there).

        Returns:
            LongTensor ``[M, slots]``: row ``m`` lists the key blocks (``0 <= id < M``) of query block ``m``,
            ``-1`` in unused slots; rows may hold different counts, in any order.
        """
        raise NotImplementedError

    def max_slots(self, num_blocks: int) -> Optional[int]:
        """Optional: the most key blocks a row can hold, known without drawing (``None``: unknown).

        The operator runs dense attention when the block path would cost at least ``dense_threshold`` of the
        dense pairs; with this it decides before calling :meth:`block_index`, so that a draw is skipped (and
        the random state left untouched) when the answer is dense anyway.
        """
        return None

    def __repr__(self) -> str:
        settings = ', '.join(f'{key}={value!r}' for key, value in vars(self).items())
        return f'{type(self).__name__}({settings})'
