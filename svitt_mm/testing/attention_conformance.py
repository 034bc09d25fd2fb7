"""Conformance of a block pattern on a block-sparse backend against masked dense attention.

``check_block_pattern(pattern, backend)`` builds ``BlockSparseAttention(block_size, pattern=pattern,
backend=backend)`` and runs every named case of :data:`CASES` on small random inputs: outputs and the global
queries' probabilities against a hand-written softmax over the pattern's token mask (:func:`masked_attention`,
in float64), and the gradients of ``q, k, v`` and of a learnable bias table where the backend has a backward
on the device. A case the backend declares it cannot compute must raise ``ValueError`` (no silent fallback).
Any registered pattern and backend; a failing case raises ``AssertionError`` naming it::

    from svitt_mm.testing import check_block_pattern
    check_block_pattern(dict(type='MyBlocks', width=2), backend='gather')
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from torch import Tensor

from svitt_mm.models.attention.backends import describe_call
from svitt_mm.models.attention.block_sparse import BlockSparseAttention


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
        index = torch.arange(num_tokens, device=q.device)
        logits = logits + bias(index[:, None], index[None, :]).to(logits.dtype)
    blocked = torch.zeros(num_tokens, num_tokens, dtype=torch.bool, device=q.device)
    if allowed is not None:
        blocked = ~allowed.to(q.device)
    blocked = blocked[None, None]
    if key_padding_mask is not None:
        blocked = blocked | key_padding_mask[:, None, None, :]
    logits = logits.masked_fill(blocked, float('-inf'))
    weights = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
    probs = weights / weights.sum(dim=-1, keepdim=True)
    return torch.einsum('bhij,bhjd->bhid', probs, v), probs[:, :, :num_global]


class TableBias(torch.nn.Module):
    """A learnable :class:`~svitt_mm.models.attention.PairBias`: one value per (sample or shared, head,
    query, key) pair. ``table``: ``[B or 1, H, N, N]``; ``bias(q_index, k_index)`` returns
    ``table[:, :, q_index, k_index]``."""

    def __init__(self, batch: int, heads: int, num_tokens: int, generator: torch.Generator) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(batch, heads, num_tokens, num_tokens, generator=generator))

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


def clone_inputs(inputs: dict, device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None) -> dict:
    """Independent leaf copies of :func:`make_inputs`' tensors and bias (same values, own gradients), on
    ``device`` and in ``dtype`` (``q, k, v`` only; the bias table keeps its dtype) when given."""
    copy = {name: inputs[name].detach().to(device=device, dtype=dtype).requires_grad_() for name in ('q', 'k', 'v')}
    padding = inputs['key_padding_mask']
    copy['key_padding_mask'] = None if padding is None else padding.to(device)
    bias = inputs['bias']
    copy['bias'] = None
    if bias is not None:
        copy['bias'] = TableBias(1, 1, 1, torch.Generator())
        copy['bias'].table = torch.nn.Parameter(bias.table.detach().to(device).clone())
    return copy


def weighted_loss(out: Tensor, key_padding_mask: Optional[Tensor], seed: int) -> Tensor:
    """A random linear loss of the outputs at non-padding query positions (padding rows are unspecified)."""
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.device, out.dtype)
    if key_padding_mask is not None:
        weights = weights.masked_fill(key_padding_mask.to(out.device)[:, None, :, None], 0.0)
    return (out * weights).sum()


def gradients(inputs: dict) -> dict:
    """Gradients of ``q, k, v`` and of the bias table after ``backward``."""
    grads = {name: inputs[name].grad for name in ('q', 'k', 'v')}
    if inputs['bias'] is not None:
        grads['bias'] = inputs['bias'].table.grad
    return grads


def assert_close_where_valid(out: Tensor, expected: Tensor, key_padding_mask: Optional[Tensor],
                             atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Compare outputs ``[B, H, N, D]`` at the non-padding query positions only."""
    out, expected = out.cpu(), expected.cpu().to(out.dtype)
    if key_padding_mask is not None:
        sample, position = (~key_padding_mask.cpu()).nonzero(as_tuple=True)
        out, expected = out[sample, :, position], expected[sample, :, position]
    torch.testing.assert_close(out, expected, atol=atol, rtol=rtol)


def assert_same_gradients(inputs: dict, reference_inputs: dict, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Gradients of q, k, v (and the bias table) agree between two :func:`make_inputs` sets."""
    ours, theirs = gradients(inputs), gradients(reference_inputs)
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name].cpu(), theirs[name].cpu().to(ours[name].dtype), atol=atol, rtol=rtol,
                                   msg=lambda text, name=name: f'gradient of {name}: {text}')


@dataclass(frozen=True)
class Case:
    """One conformance case: the inputs, and how the operator gets its pattern.

    ``mode``: ``'layout'`` passes a layout drawn from a seeded generator; ``'eval'`` checks that evaluation
    is deterministic (two calls under different random states agree, and match the reference on
    ``eval_layout``); ``'train'`` checks that each training call uses the pattern drawn at that call.
    """

    batch: int = 2
    num_global: int = 1
    num_local: int = 45  # 12 blocks of 4, the last one ragged (1 token)
    padded: bool = False
    bias_batch: Optional[int] = 1
    dtype: torch.dtype = torch.float32
    mode: str = 'layout'


CASES: Dict[str, Case] = {
    'ragged_last_block': Case(),
    'key_padding': Case(padded=True),
    'two_global_tokens': Case(num_global=2, num_local=44, padded=True),
    'three_global_tokens': Case(num_global=3, num_local=47, bias_batch=2),
    'batch_per_sample_bias': Case(batch=3, bias_batch=3, padded=True),
    'no_bias': Case(bias_batch=None, padded=True),
    'bfloat16': Case(dtype=torch.bfloat16, padded=True),
    'deterministic_eval': Case(padded=True, mode='eval'),
    'training_redraw': Case(mode='train'),
}
BLOCK_SIZE = 4
HEADS, HEAD_DIM = 2, 16  # the smallest head size every kernel tiles


def padding_mask(batch: int, num_tokens: int, num_global: int, seed: int) -> Tensor:
    """Random local padding (global tokens never padded), at least one padded key per sample."""
    mask = torch.rand(batch, num_tokens, generator=torch.Generator().manual_seed(seed)) < 0.3
    mask[:, :num_global] = False
    mask[:, -1] = True
    return mask


def reference(inputs: dict, layout_index: Tensor, num_global: int, num_local: int) -> Tuple[Tensor, Tensor, dict]:
    """Masked dense attention in float64 on the CPU: ``(out, probs, its inputs)``."""
    ref = clone_inputs(inputs, torch.device('cpu'), torch.float64)
    allowed = layout_token_mask(layout_index.cpu(), BLOCK_SIZE, num_local, num_global)
    out, probs = masked_attention(ref['q'], ref['k'], ref['v'], num_global, allowed, ref['key_padding_mask'],
                                  ref['bias'])
    return out, probs, ref


def run_case(pattern, backend: str, name: str, device: torch.device, backend_options: Optional[dict] = None,
             atol: Optional[float] = None) -> str:
    """Run one case of :data:`CASES`; returns ``'passed'``, ``'forward only (...)'`` or ``'unsupported (...)'``
    and raises ``AssertionError`` on a mismatch."""
    case = CASES[name]
    device = torch.device(device)
    num_tokens = case.num_global + case.num_local
    padding = padding_mask(case.batch, num_tokens, case.num_global, seed=1) if case.padded else None
    base = make_inputs(case.batch, HEADS, num_tokens, HEAD_DIM, seed=2, padding=padding, bias_batch=case.bias_batch)
    base = clone_inputs(base, torch.device('cpu'), case.dtype)  # the dtype's rounding, in the reference too
    ours = clone_inputs(base, device)
    low = case.dtype != torch.float32
    atol = atol if atol is not None else (3e-2 if low else 1e-5)
    op = BlockSparseAttention(BLOCK_SIZE, pattern=pattern, backend=backend, dense_threshold=float('inf'),
                              eval_seed=3, backend_options=backend_options)
    op.train(case.mode == 'train')
    chosen = op.backends[backend]
    call = describe_call(ours['q'], ours['k'], ours['v'], case.num_global, BLOCK_SIZE, ours['key_padding_mask'],
                         ours['bias'])
    reasons = chosen.not_supported_reasons(call)
    forward_only = bool(reasons) and not chosen.not_supported_reasons(dataclasses.replace(call, needs_grad=False))
    if reasons and not forward_only:
        try:
            op(ours['q'], ours['k'], ours['v'], num_global=case.num_global,
               key_padding_mask=ours['key_padding_mask'], bias=ours['bias'])
        except ValueError as error:
            assert all(reason in str(error) for reason in reasons), f'{name}: the error omits a reason: {error}'
            return f'unsupported ({"; ".join(reasons)})'
        raise AssertionError(f'{name}: backend {backend!r} declares it cannot compute {call} '
                             f'({"; ".join(reasons)}) but ran without a ValueError')

    def call_op(layout=None) -> Tuple[Tensor, Tensor]:
        with torch.set_grad_enabled(not forward_only), warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='flex_attention called without torch.compile')
            return op(ours['q'], ours['k'], ours['v'], num_global=case.num_global, layout=layout,
                      key_padding_mask=ours['key_padding_mask'], bias=ours['bias'])

    if case.mode == 'layout':
        layout = op.make_layout(case.num_local, device=device, generator=torch.Generator().manual_seed(3))
        out, probs = call_op(layout)
    elif case.mode == 'eval':
        torch.manual_seed(0)
        out, probs = call_op()
        torch.manual_seed(1)
        again, _ = call_op()
        torch.testing.assert_close(again, out, atol=0, rtol=0, msg=lambda text: f'{name}: evaluation differs: {text}')
        layout = op.eval_layout(case.num_local, device=device)
        twin = BlockSparseAttention(BLOCK_SIZE, pattern=pattern, dense_threshold=float('inf'), eval_seed=3)
        assert torch.equal(twin.eval_layout(case.num_local).block_index.cpu(), layout.block_index.cpu()), \
            f'{name}: two operators with one eval_seed have different evaluation patterns'
    else:
        torch.manual_seed(4)
        out, probs = call_op()
        second, _ = call_op()  # the next draw
        torch.manual_seed(4)
        layout = op.make_layout(case.num_local, device=device)  # replays both draws
        second_layout = op.make_layout(case.num_local, device=device)
        second_ref, _, _ = reference(base, second_layout.block_index, case.num_global, case.num_local)
        assert_close_where_valid(second.detach(), second_ref, padding, atol=atol, rtol=atol)
    assert op.last_backend == backend, f'{name}: {op.last_backend!r} computed it, not {backend!r}'
    assert out.dtype == case.dtype and probs.dtype == case.dtype, f'{name}: outputs in {out.dtype}, not {case.dtype}'
    ref_out, ref_probs, ref = reference(base, layout.block_index, case.num_global, case.num_local)
    assert not layout_token_mask(layout.block_index.cpu(), BLOCK_SIZE, case.num_local, case.num_global).all(), \
        f'{name}: the pattern covers every pair at {case.num_local} local tokens (nothing sparse to check)'
    assert_close_where_valid(out.detach(), ref_out, padding, atol=atol, rtol=atol)
    torch.testing.assert_close(probs.detach().cpu(), ref_probs.to(probs.dtype), atol=atol / 3 if low else atol,
                               rtol=atol, msg=lambda text: f'{name}: global_probs: {text}')
    if padding is not None:
        assert (probs.detach().cpu().masked_select(padding[:, None, None, :]) == 0).all(), \
            f'{name}: padding keys get attention probability'
        check_padding_keys_are_ignored(ours, layout, out.detach(), call_op, atol)
    if forward_only:
        return f'forward only ({"; ".join(reasons)})'
    if not low:
        weighted_loss(out, padding, seed=5).backward()
        weighted_loss(ref_out, padding, seed=5).backward()
        assert_same_gradients(ours, ref, atol=10 * atol, rtol=10 * atol)
    return 'passed'


def check_padding_keys_are_ignored(ours: dict, layout, out: Tensor, call_op, atol: float) -> None:
    """Outputs at valid queries do not change when the keys and values at padding positions do."""
    padding = ours['key_padding_mask']
    saved = ours['k'], ours['v']
    ours['k'] = saved[0].detach().masked_fill(padding[:, None, :, None], 50.0)
    ours['v'] = saved[1].detach().masked_fill(padding[:, None, :, None], 1e6)
    try:
        with torch.no_grad():
            probe, _ = call_op(layout)
    finally:
        ours['k'], ours['v'] = saved
    assert_close_where_valid(probe, out, padding.cpu(), atol=atol, rtol=atol)


def check_block_pattern(pattern, backend: str = 'gather', device='cpu', cases: Optional[Iterable[str]] = None,
                        backend_options: Optional[dict] = None, atol: Optional[float] = None) -> Dict[str, str]:
    """Run the conformance cases (all of :data:`CASES` by default) of ``pattern`` (an ``ATTENTION_PATTERNS``
    config or a :class:`~svitt_mm.models.attention.BlockPattern`) on ``backend`` and ``device``.

    Returns ``{case: status}``; raises ``AssertionError`` naming the first case that does not conform.
    ``atol`` overrides the tolerance (default 1e-5 in float32, 3e-2 in bfloat16; gradients 10x).
    """
    return {name: run_case(pattern, backend, name, device, backend_options, atol) for name in (cases or CASES)}
