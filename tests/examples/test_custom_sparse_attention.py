"""The custom-operator example: a user's config registers an op from outside svitt_mm, and the op is exact.

Does what ``python tools/train.py examples/custom_sparse_attention/svitt_demo_strided.py`` does before
training: repo root on ``sys.path``, ``register_all_modules()``, ``Config.fromfile`` (which, in mmengine
0.10.7, performs the config's ``custom_imports`` with ``import_modules_from_strings``), ``MODELS.build``.
"""
import math
import os.path as osp
import sys
from typing import Optional

import pytest
import torch
from mmengine.config import Config
from torch import Tensor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # as tools/train.py does: the example module resolves from the repo root
sys.path.insert(0, osp.join(ROOT, 'tests', 'models', 'attention'))
from masked_reference import (assert_close_where_valid, assert_same_gradients, clone_inputs,  # noqa: E402
                              layout_token_mask, make_inputs, weighted_loss)

from svitt_mm.models.attention import AttentionOp, DenseAttention, PairBias  # noqa: E402
from svitt_mm.registry import ATTENTION_OPS, MODELS  # noqa: E402
from svitt_mm.utils import register_all_modules  # noqa: E402

EXAMPLE = osp.join(ROOT, 'examples', 'custom_sparse_attention', 'svitt_demo_strided.py')
PLUGIN = 'examples.custom_sparse_attention.strided_attention'


@pytest.fixture(scope='module')
def cfg() -> Config:
    assert PLUGIN not in sys.modules, 'nothing but the example config may import the plugin'
    register_all_modules()
    return Config.fromfile(EXAMPLE)


@pytest.fixture(scope='module')
def op_class(cfg):
    return sys.modules[PLUGIN].StridedBlockAttention


class MaskBias:
    """:class:`PairBias` adding ``-inf`` on the pairs ``allowed [N, N]`` forbids to an optional inner bias."""

    def __init__(self, allowed: Tensor, inner: Optional[PairBias] = None) -> None:
        self.blocked = torch.zeros(allowed.shape).masked_fill(~allowed, -math.inf)
        self.inner = inner

    def __call__(self, q_index: Tensor, k_index: Tensor) -> Tensor:
        bias = self.blocked[q_index, k_index][None, None]
        return bias if self.inner is None else bias + self.inner(q_index, k_index)


class MaskedDenseAttention(AttentionOp):
    """DenseAttention restricted to the token pairs ``allowed [N, N]`` (the reference of the sparse op)."""

    def __init__(self, allowed: Tensor) -> None:
        super().__init__()
        self.allowed = allowed
        self.dense = DenseAttention()

    def forward(self, q, k, v, num_global=1, layout=None, key_padding_mask=None, bias=None):
        return self.dense(q, k, v, num_global=num_global, key_padding_mask=key_padding_mask,
                          bias=MaskBias(self.allowed, bias))


def test_config_custom_imports_register_the_op(cfg, op_class):
    assert cfg.custom_imports == dict(imports=[PLUGIN], allow_failed_imports=False)
    assert ATTENTION_OPS.get('StridedBlockAttention') is op_class
    assert op_class.__module__ == PLUGIN  # defined outside svitt_mm
    assert cfg.model.vision_encoder.attention.type == 'StridedBlockAttention'


def test_block_table(op_class):
    op = op_class(block_size=2, stride=3, local_blocks=1, dense_threshold=math.inf)
    layout = op.make_layout(15)  # 8 blocks, the last one ragged
    assert not layout.is_dense
    assert layout.block_index.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, -1], [0, 3, 6], [1, 4, 7],
                                           [2, 5, -1], [0, 3, 6], [1, 4, 7]]
    window = op_class(block_size=2, stride=4, local_blocks=3, dense_threshold=math.inf).make_layout(12)
    assert window.block_index.tolist() == [[0, 1, 4, -1], [0, 1, 2, 5], [1, 2, 3, -1], [2, 3, 4, -1],
                                           [0, 3, 4, 5], [1, 4, 5, -1]]
    assert op_class(block_size=2, stride=2).make_layout(8).is_dense  # half the blocks: dense fallback


def test_bad_stride_names_the_value(op_class):
    with pytest.raises(ValueError, match=r'StridedBlockAttention: stride must be an int >= 2, got 1'):
        op_class(stride=1)


# (num_global, num_local, block_size, stride, local_blocks, padded)
CASES = {
    'ragged_with_padding': (1, 23, 3, 3, 1, True),
    'window_3': (2, 26, 2, 4, 3, True),
    'no_window': (1, 20, 2, 3, 0, False),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_matches_masked_dense_attention(op_class, case):
    num_global, num_local, size, stride, local, padded = CASES[case]
    batch, heads, dim, num_tokens = 2, 3, 8, num_global + num_local
    padding = None
    if padded:
        padding = torch.zeros(batch, num_tokens, dtype=torch.bool)
        padding[0, -3:] = padding[1, num_global + 4] = True
    inputs = make_inputs(batch, heads, num_tokens, dim, seed=0, padding=padding, bias_batch=1)
    reference_inputs = clone_inputs(inputs)

    op = op_class(block_size=size, stride=stride, local_blocks=local, dense_threshold=math.inf)
    layout = op.make_layout(num_local)
    allowed = layout_token_mask(layout.block_index, size, num_local, num_global)
    assert not allowed.all()
    out, probs = op(inputs['q'], inputs['k'], inputs['v'], num_global=num_global, layout=layout,
                    key_padding_mask=padding, bias=inputs['bias'])
    ref_out, ref_probs = MaskedDenseAttention(allowed)(
        reference_inputs['q'], reference_inputs['k'], reference_inputs['v'], num_global=num_global,
        key_padding_mask=padding, bias=reference_inputs['bias'])

    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=1e-5, rtol=1e-5)
    weighted_loss(out, padding, seed=1).backward()
    weighted_loss(ref_out, padding, seed=1).backward()
    assert_same_gradients(inputs, reference_inputs)


def test_model_from_config_encodes_video_with_the_pattern(cfg, op_class):
    model = MODELS.build(cfg.model).eval()
    ops = [block.attn.op for block in model.vision_encoder.blocks]
    assert all(type(op) is op_class and op.stride == 4 and op.block_size == 4 for op in ops)
    layout = ops[0].make_layout(4 * 16)  # 4 frames of 4x4 patches
    assert not layout.is_dense

    video = torch.randn(2, 1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sparse = model.encode_video(video)
        allowed = layout_token_mask(layout.block_index, 4, 64, 1)
        for block in model.vision_encoder.blocks:
            block.attn.op = MaskedDenseAttention(allowed)
        reference = model.encode_video(video)
        for block in model.vision_encoder.blocks:
            block.attn.op = DenseAttention()
        dense = model.encode_video(video)

    assert sparse.tokens.shape == (2, 1, 65, model.vision_encoder.embed_dims)
    torch.testing.assert_close(sparse.tokens, reference.tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse.embedding, reference.embedding, atol=1e-5, rtol=1e-5)
    assert (sparse.tokens - dense.tokens).abs().max() > 1e-2  # the pattern changes the result
