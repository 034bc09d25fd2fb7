"""The contract every attention operator in ``ATTENTION_OPS`` follows.

An operator computes softmax attention of queries over keys for one layer, for a sequence whose first
``num_global`` tokens are *global* (e.g. the video [CLS]) and whose remaining ``N - num_global`` tokens are
*local* (patch tokens, in their current order).  Global tokens attend to every token and every token
attends to them; which local key tokens a local query sees is the operator's choice (all of them for
:class:`DenseAttention`, a block pattern for sparse operators).

Call::

    out, global_probs = op(q, k, v, num_global=1, layout=None, key_padding_mask=None, bias=None)

* ``q, k, v``: ``[B, H, N, D]``; ``out``: ``[B, H, N, D]``.
* ``global_probs``: ``[B, H, num_global, N]``, the softmax attention of the global queries over all keys
  (what token pruners rank tokens by).
* ``key_padding_mask``: optional bool ``[B, N]``, ``True`` where a token is padding. Padding keys never
  receive attention; outputs at padding query positions are unspecified (finite).
* ``bias``: optional :class:`PairBias` (see below), added to the scaled logits for exactly the
  (query, key) pairs the operator computes.
* ``layout``: an operator-specific description of which local keys each local query sees
  (``op.make_layout(num_local_tokens, device=..., generator=None)``); ``None`` makes a fresh one.

``train()`` / ``eval()`` switch between patterns that are re-drawn at each call and patterns that are
deterministic, so that evaluation is reproducible. A model that stacks operators sets each one's
``layer_index`` (0, 1, ...), so that deterministic patterns differ from layer to layer.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Protocol, Tuple

import torch
from torch import Tensor, nn


class PairBias(Protocol):
    """Additive attention bias for arbitrary (query, key) pairs of the current sequence.

    ``bias(q_index, k_index)`` takes two integer tensors that broadcast to a common shape ``S``
    (positions in the current sequence, global tokens included) and returns a tensor
    ``[B or 1, H, *S]`` in the logits' dtype.

    A pair bias that is a lookup into a small learnable table may also offer ``as_table()`` returning a
    :class:`BiasTable`; operators that read the table inside a fused kernel (``FusedBiasDenseAttention``)
    use it, and materialise the bias (with a logged warning) when it is missing.
    """

    def __call__(self, q_index: Tensor, k_index: Tensor) -> Tensor:
        ...


class BiasTable(NamedTuple):
    """A pair bias as a table lookup: ``bias(q, k) == table[rows(q, k)].movedim(-1, 1)``.

    ``table``: ``[R, H]`` (gradients flow to it); ``rows(q_index, k_index)``: ``LongTensor[P, *S]``
    (``P`` = batch size or 1) for integer tensors broadcasting to ``S``; ``rows(q_index, k_index, sample)``:
    the rows ``[*S]`` of batch element ``sample``. Made of elementwise index arithmetic and gathers from
    small per-token tensors, so that it also runs on the 0-d indices of a ``flex_attention`` ``score_mod``.
    """

    table: Tensor
    rows: Callable[..., Tensor]


def bias_table(bias: Optional[PairBias]) -> Optional[BiasTable]:
    """``bias.as_table()`` where the pair bias offers it, else ``None``."""
    as_table = getattr(bias, 'as_table', None)
    return None if as_table is None else as_table()


class AttentionOp(nn.Module):
    """Base class of attention operators; see the module docstring for the contract."""

    layer_index: int = 0

    def make_layout(self, num_local_tokens: int, device: Optional[torch.device] = None,
                    generator: Optional[torch.Generator] = None):
        """Return the operator's layout for ``num_local_tokens`` local tokens (``None`` when dense)."""
        return None

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_global: int = 1, layout=None,
                key_padding_mask: Optional[Tensor] = None,
                bias: Optional[PairBias] = None) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError
