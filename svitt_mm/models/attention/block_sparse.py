"""Block-sparse attention (SViTT's edge sparsity): one operator for every pattern and every backend.

Global queries attend densely to every key; local query block ``m`` attends to the global keys and to the key
blocks its :class:`~.block_layout.BlockLayout` row lists. Which blocks those are is the *pattern*'s answer
(a :class:`~.block_pattern.BlockPattern` from ``ATTENTION_PATTERNS``); how the pairs are computed is the
*backend*'s job (:mod:`.backends`), chosen per call by :mod:`.dispatch`.
"""
from __future__ import annotations

import difflib
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from svitt_mm.registry import ATTENTION_OPS, ATTENTION_PATTERNS
from svitt_mm.utils.arg_checks import check_arguments, int_at_least, number_in, optional

from .backends import BACKENDS, describe_call
from .base import AttentionOp, PairBias
from .block_layout import (BlockLayout, KeyTables, block_table, computed_pair_fraction, dense_block_index,
                           key_tables, num_blocks)
from .block_pattern import BlockPattern
from .dense import DenseAttention
from .dispatch import choose_backend
from .local_random_blocks import LocalRandomBlocks


def build_pattern(pattern: Union[BlockPattern, dict, None], local_blocks: Optional[int],
                  random_blocks: Optional[int]) -> BlockPattern:
    """The operator's pattern: ``pattern`` (built from ``ATTENTION_PATTERNS`` when a dict), or
    :class:`LocalRandomBlocks` from the ``local_blocks`` / ``random_blocks`` shorthand (SViTT's 1 + 3 when
    neither is given)."""
    shorthand = {key: value for key, value in (('local_blocks', local_blocks), ('random_blocks', random_blocks))
                 if value is not None}
    if pattern is None:
        return LocalRandomBlocks(**shorthand)
    if shorthand:
        raise ValueError(f'BlockSparseAttention: {" and ".join(shorthand)} are shorthand for '
                         f"pattern=dict(type='LocalRandomBlocks', ...); give them inside pattern, not next to it")
    if isinstance(pattern, dict):
        pattern = ATTENTION_PATTERNS.build(dict(pattern))
    if not isinstance(pattern, BlockPattern):
        raise TypeError(f'BlockSparseAttention: pattern must be a BlockPattern or an ATTENTION_PATTERNS config '
                        f'dict, got {type(pattern).__name__}')
    return pattern


def check_backend_name(name: str, what: str) -> None:
    """Raise a readable error, with a suggestion, for an unknown backend name."""
    if name not in BACKENDS:
        close = difflib.get_close_matches(str(name), BACKENDS, n=1)
        hint = f'; did you mean {close[0]!r}?' if close else ''
        raise ValueError(f'BlockSparseAttention: {what} {name!r} is not a backend (known: {", ".join(BACKENDS)})'
                         + hint)


@ATTENTION_OPS.register_module()
class BlockSparseAttention(AttentionOp):
    """Global tokens + the block pattern of the local tokens, on any backend.

    Args:
        block_size: local tokens per block.
        pattern: an ``ATTENTION_PATTERNS`` config (``dict(type='StridedBlocks', stride=4)``) or a
            :class:`~.block_pattern.BlockPattern`. ``None``: :class:`LocalRandomBlocks`.
        backend: ``'auto'`` (the fastest that can compute each call, see :mod:`.dispatch`) or one of
            ``'triton'``, ``'cpu_kernel'``, ``'flex'``, ``'gather'`` (then a call it cannot compute raises
            ``ValueError`` saying why).
        dense_threshold: run dense attention when the block path would compute at least this fraction of
            the ``N x N`` local pairs (padded slots included, as they cost time); ``float('inf')`` never
            falls back. The default 0.35 is about where the block path stopped paying (forward+backward)
            on a 2-core CPU: 16 frames (4/56 of the pairs) ran ~2x faster than dense, 10-11 blocks of 56
            about even, fewer blocks slower.
        eval_seed: seed of the deterministic evaluation pattern (mixed with the op's ``layer_index``,
            which the backbone sets, and the number of blocks, so that layers see different patterns).
        local_blocks, random_blocks: shorthand for ``pattern=dict(type='LocalRandomBlocks', ...)``.
        backend_options: per-backend tuning, e.g. ``dict(triton=dict(block_n=32), flex=dict(compile=False))``.

    In training mode every call without an explicit layout asks the pattern afresh (torch's global RNG);
    in eval mode it asks once per token count with a generator seeded from ``eval_seed``, ``layer_index``
    and the number of blocks, on the CPU so that it is the same on every device. After each call
    ``last_backend`` names what computed it (``'dense'`` when the pattern reached ``dense_threshold``).
    """

    argument_checks = dict(
        block_size=int_at_least(1), dense_threshold=number_in(0, float('inf'), low_open=True),
        eval_seed=int_at_least(0),
        # the shorthand, checked as LocalRandomBlocks checks it
        local_blocks=optional(LocalRandomBlocks.argument_checks['local_blocks']),
        random_blocks=optional(LocalRandomBlocks.argument_checks['random_blocks']))

    def __init__(self, block_size: int = 56, pattern: Union[BlockPattern, dict, None] = None,
                 backend: str = 'auto', dense_threshold: float = 0.35, eval_seed: int = 0,
                 local_blocks: Optional[int] = None, random_blocks: Optional[int] = None,
                 backend_options: Optional[Dict[str, dict]] = None) -> None:
        super().__init__()
        check_arguments(self, block_size=block_size, dense_threshold=dense_threshold, eval_seed=eval_seed,
                        local_blocks=local_blocks, random_blocks=random_blocks)
        if backend != 'auto':
            check_backend_name(backend, 'backend')
        for name in backend_options or {}:
            check_backend_name(name, 'backend_options key')
        self.block_size = block_size
        self.pattern = build_pattern(pattern, local_blocks, random_blocks)
        self.backend = backend
        self.backends = {name: cls(**(backend_options or {}).get(name, {})) for name, cls in BACKENDS.items()}
        self.dense_threshold = float(dense_threshold)
        self.eval_seed = int(eval_seed)
        self.dense = DenseAttention()
        self.last_backend: Optional[str] = None
        self._eval_layouts: Dict[tuple, BlockLayout] = {}
        self._eval_key_tables: Dict[tuple, Tuple[BlockLayout, KeyTables]] = {}

    # SViTT's settings, read and written by the curriculum (engine/hooks/curriculum_hook.py).
    local_blocks = property(lambda self: self.pattern_setting('local_blocks'),
                            lambda self, value: self.set_pattern_setting('local_blocks', value))
    random_blocks = property(lambda self: self.pattern_setting('random_blocks'),
                             lambda self, value: self.set_pattern_setting('random_blocks', value))

    def pattern_setting(self, key: str):
        if not hasattr(self.pattern, key):
            raise AttributeError(f'BlockSparseAttention: its pattern {self.pattern!r} has no {key}')
        return getattr(self.pattern, key)

    def set_pattern_setting(self, key: str, value) -> None:
        """Change one setting of the pattern, checked by the pattern's constructor."""
        self.pattern_setting(key)
        self.pattern = type(self.pattern)(**dict(vars(self.pattern), **{key: value}))

    def extra_repr(self) -> str:
        options = ''.join(f', {name}: {text}' for name, text in
                          ((name, backend.extra_repr()) for name, backend in self.backends.items()) if text)
        return (f'block_size={self.block_size}, pattern={self.pattern!r}, backend={self.backend!r}, '
                f'dense_threshold={self.dense_threshold}, eval_seed={self.eval_seed}{options}')

    def make_layout(self, num_local_tokens: int, device: Optional[torch.device] = None,
                    generator: Optional[torch.Generator] = None,
                    training: Optional[bool] = None) -> BlockLayout:
        """Ask the pattern for the block table of ``num_local_tokens`` local tokens.

        Args:
            num_local_tokens: ``N - num_global``.
            device: where the block table lives (and is drawn, unless ``generator`` says otherwise).
            generator: random source of the pattern; torch's global RNG when ``None``.
            training: passed to the pattern; ``None``: the operator's mode.

        Returns:
            A :class:`BlockLayout`; ``is_dense`` when the pattern reaches ``dense_threshold``.
        """
        count = num_blocks(num_local_tokens, self.block_size)
        slots = self.pattern.max_slots(count)
        if slots is not None and computed_pair_fraction(num_local_tokens, self.block_size, slots) \
                >= self.dense_threshold:
            return self.dense_layout(num_local_tokens, count, device)
        training = self.training if training is None else training
        index = self.pattern.block_index(count, training, generator=generator, device=device)
        self.check_pattern_output(index, count)
        index = block_table(index if device is None else index.to(device), slots)
        if slots is None and computed_pair_fraction(num_local_tokens, self.block_size, index.shape[1]) \
                >= self.dense_threshold:
            return self.dense_layout(num_local_tokens, count, device)
        return BlockLayout(index, self.block_size, num_local_tokens, False)

    def dense_layout(self, num_local_tokens: int, count: int, device: Optional[torch.device]) -> BlockLayout:
        return BlockLayout(dense_block_index(count, device), self.block_size, num_local_tokens, True)

    def check_pattern_output(self, index: Tensor, count: int) -> None:
        """Raise a readable error when the pattern's answer is not a ``[M, slots]`` table of block ids (the
        range is checked where the table is on the CPU, to keep device tables free of host reads)."""
        name = f'BlockSparseAttention: pattern {self.pattern!r}'
        if not isinstance(index, Tensor) or index.dim() != 2 or index.shape[0] != count \
                or index.dtype.is_floating_point or index.dtype == torch.bool:
            shape = tuple(index.shape) if isinstance(index, Tensor) else type(index).__name__
            raise ValueError(f'{name}: block_index must return an integer tensor [{count}, slots], got {shape}')
        if index.device.type == 'cpu' and index.numel() and (index.min() < -1 or index.max() >= count):
            raise ValueError(f'{name}: block ids must lie in [0, {count}) (-1 for unused slots), got '
                             f'{index.min().item()}..{index.max().item()}')

    def eval_layout(self, num_local_tokens: int, device: Optional[torch.device] = None) -> BlockLayout:
        """The deterministic pattern used in eval mode: a function of ``eval_seed``, ``layer_index``, the
        pattern's settings and the block count. Asked once per token count and device, then reused."""
        key = (num_local_tokens, None if device is None else torch.device(device), self.eval_seed,
               self.layer_index, repr(self.pattern))
        if key not in self._eval_layouts:
            count = num_blocks(num_local_tokens, self.block_size)
            seed = (self.eval_seed * 1_000_003 + self.layer_index) * 1_000_033 + count
            generator = torch.Generator().manual_seed(seed)
            self._eval_layouts[key] = self.make_layout(num_local_tokens, device=device, generator=generator,
                                                       training=False)
        return self._eval_layouts[key]

    def key_tables(self, layout: BlockLayout, num_global: int) -> KeyTables:
        """:func:`~.block_layout.key_tables` of ``layout``; built once for the cached evaluation layouts."""
        if not any(layout is cached for cached in self._eval_layouts.values()):
            return key_tables(layout, num_global)
        key = (id(layout), num_global)
        if key not in self._eval_key_tables:
            self._eval_key_tables[key] = (layout, key_tables(layout, num_global))
        return self._eval_key_tables[key][1]

    def resolve_layout(self, q: Tensor, num_global: int, layout: Optional[BlockLayout]) -> BlockLayout:
        """Check a given layout against the input, or make one for the current mode."""
        num_local = q.shape[-2] - num_global
        if layout is None:
            if self.training:
                return self.make_layout(num_local, device=q.device)
            return self.eval_layout(num_local, device=q.device)
        if not isinstance(layout, BlockLayout):
            raise TypeError(f'BlockSparseAttention: layout must be a BlockLayout from make_layout, '
                            f'got {type(layout).__name__}')
        if layout.num_tokens != num_local or layout.block_size != self.block_size:
            raise ValueError(
                f'BlockSparseAttention: layout was made for {layout.num_tokens} local tokens in blocks of '
                f'{layout.block_size}, but the input has {num_local} local tokens '
                f'(N={q.shape[-2]}, num_global={num_global}) and block_size={self.block_size}')
        return layout

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_global: int = 1,
                layout: Optional[BlockLayout] = None, key_padding_mask: Optional[Tensor] = None,
                bias: Optional[PairBias] = None) -> Tuple[Tensor, Tensor]:
        """See :mod:`.base`: ``q, k, v [B, H, N, D]`` -> ``(out [B, H, N, D], global_probs [B, H, G, N])``."""
        check_inputs(q, k, v, num_global, key_padding_mask)
        layout = self.resolve_layout(q, num_global, layout)
        if layout.is_dense:
            self.last_backend = 'dense'
            return self.dense(q, k, v, num_global=num_global, key_padding_mask=key_padding_mask, bias=bias)
        call = describe_call(q, k, v, num_global, layout.block_size, key_padding_mask, bias)
        self.last_backend = choose_backend(self.backends, self.backend, call)
        return self.backends[self.last_backend].attention(q, k, v, num_global, layout,
                                                           self.key_tables(layout, num_global),
                                                           key_padding_mask, bias)


def check_inputs(q: Tensor, k: Tensor, v: Tensor, num_global: int, key_padding_mask: Optional[Tensor]) -> None:
    """Raise a readable error for inputs that break the operator contract."""
    name = 'BlockSparseAttention'
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f'{name}: q, k, v must share one shape [B, H, N, D], got '
                         f'{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}')
    if not 0 <= num_global <= q.shape[-2]:
        raise ValueError(f'{name}: num_global={num_global} is outside [0, N={q.shape[-2]}]')
    if key_padding_mask is not None and (key_padding_mask.dtype != torch.bool
                                         or key_padding_mask.shape != (q.shape[0], q.shape[-2])):
        raise ValueError(f'{name}: key_padding_mask must be bool [B, N]=[{q.shape[0]}, {q.shape[-2]}], '
                         f'got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}')
