"""Reference computations for the attention-operator tests: explicit softmax over a token-level mask."""
from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor


def layout_token_mask(block_index: Tensor, block_size: int, num_local: int, num_global: int) -> Tensor:
    """Bool ``[N, N]`` (``N = num_global + num_local``): ``True`` where query ``i`` may attend to key ``j``.

    Written with plain loops over the block table, independently of the operators' index arithmetic.
    """
    total = num_global + num_local
    allowed = torch.zeros(total, total, dtype=torch.bool)
    allowed[:num_global, :] = True
    allowed[:, :num_global] = True
    for query_block, row in enumerate(block_index.tolist()):
        q_start = num_global + query_block * block_size
        q_stop = min(q_start + block_size, total)
        for key_block in row:
            if key_block < 0:
                continue
            k_start = num_global + key_block * block_size
            allowed[q_start:q_stop, k_start:min(k_start + block_size, total)] = True
    return allowed


def masked_attention(q: Tensor, k: Tensor, v: Tensor, num_global: int, allowed: Optional[Tensor] = None,
                     key_padding_mask: Optional[Tensor] = None,
                     bias: Optional[Callable[[Tensor, Tensor], Tensor]] = None) -> Tuple[Tensor, Tensor]:
    """Hand-written softmax attention ``[B, H, N, D]`` with an allowed-pairs mask, padding and pair bias.

    Returns ``(out [B, H, N, D], probs of the global queries [B, H, G, N])``.
    """
    num_tokens = q.shape[-2]
    logits = torch.einsum('bhid,bhjd->bhij', q, k) / math.sqrt(q.shape[-1])
    if bias is not None:
        index = torch.arange(num_tokens)
        logits = logits + bias(index[:, None], index[None, :])
    blocked = torch.zeros(num_tokens, num_tokens, dtype=torch.bool)
    if allowed is not None:
        blocked = ~allowed
    blocked = blocked[None, None]
    if key_padding_mask is not None:
        blocked = blocked | key_padding_mask[:, None, None, :]
    logits = logits.masked_fill(blocked, float('-inf'))
    weights = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
    probs = weights / weights.sum(dim=-1, keepdim=True)
    return torch.einsum('bhij,bhjd->bhid', probs, v), probs[:, :, :num_global]


class TableBias(torch.nn.Module):
    """A learnable :class:`PairBias`: one value per (sample or shared, head, query, key) pair.

    ``table``: ``[B or 1, H, N, N]``; ``bias(q_index, k_index)`` returns ``table[:, :, q_index, k_index]``.
    """

    def __init__(self, batch: int, heads: int, num_tokens: int, generator: torch.Generator) -> None:
        super().__init__()
        table = torch.randn(batch, heads, num_tokens, num_tokens, generator=generator)
        self.table = torch.nn.Parameter(table)

    def forward(self, q_index: Tensor, k_index: Tensor) -> Tensor:
        return self.table[:, :, q_index, k_index]


def make_inputs(batch: int, heads: int, num_tokens: int, dim: int, seed: int,
                padding: Optional[Tensor] = None, bias_batch: Optional[int] = None) -> dict:
    """Random ``q, k, v [B, H, N, D]`` (leaf tensors), optional padding mask and :class:`TableBias`."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(batch, heads, num_tokens, dim, generator=generator).requires_grad_()
              for name in ('q', 'k', 'v')}
    inputs['key_padding_mask'] = padding
    inputs['bias'] = None if bias_batch is None else TableBias(bias_batch, heads, num_tokens, generator)
    return inputs


def clone_inputs(inputs: dict) -> dict:
    """Independent leaf copies of :func:`make_inputs`' tensors and bias (same values, own gradients)."""
    copy = {name: inputs[name].detach().clone().requires_grad_() for name in ('q', 'k', 'v')}
    copy['key_padding_mask'] = inputs['key_padding_mask']
    bias = inputs['bias']
    copy['bias'] = None
    if bias is not None:
        heads, num_tokens = bias.table.shape[1], bias.table.shape[-1]
        copy['bias'] = TableBias(bias.table.shape[0], heads, num_tokens, torch.Generator())
        copy['bias'].table.data.copy_(bias.table.data)
    return copy


def weighted_loss(out: Tensor, key_padding_mask: Optional[Tensor], seed: int) -> Tensor:
    """A random linear loss of the outputs at non-padding query positions (padding rows are unspecified)."""
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    if key_padding_mask is not None:
        weights = weights.masked_fill(key_padding_mask[:, None, :, None], 0.0)
    return (out * weights).sum()


def gradients(inputs: dict) -> dict:
    """Gradients of ``q, k, v`` and of the bias table after ``backward``."""
    grads = {name: inputs[name].grad for name in ('q', 'k', 'v')}
    if inputs['bias'] is not None:
        grads['bias'] = inputs['bias'].table.grad
    return grads


def assert_close_where_valid(out: Tensor, expected: Tensor, key_padding_mask: Optional[Tensor],
                             atol: float = 1e-5) -> None:
    """Compare outputs ``[B, H, N, D]`` at the non-padding query positions only."""
    if key_padding_mask is not None:
        sample, position = (~key_padding_mask).nonzero(as_tuple=True)
        out, expected = out[sample, :, position], expected[sample, :, position]
    torch.testing.assert_close(out, expected, atol=atol, rtol=1e-5)


def assert_same_gradients(inputs: dict, reference_inputs: dict, atol: float = 1e-5) -> None:
    """Gradients of q, k, v (and the bias table) agree between two :func:`make_inputs` sets."""
    ours, theirs = gradients(inputs), gradients(reference_inputs)
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=atol, rtol=1e-5,
                                   msg=lambda text, name=name: f'gradient of {name}: {text}')
