"""The plugin example: a user's config registers a block pattern from outside svitt_mm, and the pattern runs,
exactly, on every backend.

Does what ``PYTHONPATH=. python tools/train.py examples/custom_sparse_attention/svitt_demo_log_distance.py``
does before training: repo root on ``sys.path``, ``register_all_modules()``, ``Config.fromfile`` (which
performs the config's ``custom_imports``), ``MODELS.build``.
"""
import math
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from svitt_mm.apis import register_all_modules
from svitt_mm.models.attention import BACKENDS, BlockSparseAttention, DenseAttention
from svitt_mm.registry import ATTENTION_PATTERNS, MODELS
from svitt_mm.testing import check_block_pattern
from svitt_mm.testing.attention_conformance import layout_token_mask

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXAMPLE = osp.join(ROOT, 'examples', 'custom_sparse_attention', 'svitt_demo_log_distance.py')
PLUGIN = 'examples.custom_sparse_attention.log_distance_blocks'


@pytest.fixture(scope='module')
def cfg() -> Config:
    assert PLUGIN not in sys.modules, 'nothing but the example config may import the plugin'
    sys.path.insert(0, ROOT)  # PYTHONPATH=.: the example module resolves from the repo root
    register_all_modules()
    try:
        return Config.fromfile(EXAMPLE)
    finally:
        sys.path.remove(ROOT)


def test_config_custom_imports_register_the_pattern(cfg):
    assert cfg.custom_imports == dict(imports=[PLUGIN], allow_failed_imports=False)
    pattern = ATTENTION_PATTERNS.get('LogDistanceBlocks')
    assert pattern.__module__ == PLUGIN  # defined outside svitt_mm
    assert cfg.model.vision_encoder.attention.pattern.type == 'LogDistanceBlocks'


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_pattern_conforms_on_every_backend(cfg, backend):
    print(check_block_pattern(dict(type='LogDistanceBlocks', max_distance=2), backend,
                              backend_options=dict(flex=dict(compile=False))))


class MaskBias:
    """Pair bias adding ``-inf`` on the pairs ``allowed [N, N]`` forbids (dense attention under the pattern)."""

    def __init__(self, allowed):
        self.blocked = torch.zeros(allowed.shape).masked_fill(~allowed, -math.inf)

    def __call__(self, q_index, k_index):
        return self.blocked[q_index, k_index][None, None]


class MaskedDense(DenseAttention):
    def __init__(self, allowed):
        super().__init__()
        self.mask = MaskBias(allowed)

    def forward(self, q, k, v, num_global=1, layout=None, key_padding_mask=None, bias=None):
        def both(q_index, k_index):
            return self.mask(q_index, k_index) + bias(q_index, k_index)
        return super().forward(q, k, v, num_global, key_padding_mask=key_padding_mask,
                               bias=both if bias is not None else self.mask)


def test_model_from_config_encodes_video_with_the_pattern(cfg):
    model = MODELS.build(cfg.model).eval()
    ops = [block.attn.op for block in model.vision_encoder.blocks]
    assert all(isinstance(op, BlockSparseAttention) and type(op.pattern).__name__ == 'LogDistanceBlocks'
               for op in ops)
    layout = ops[0].eval_layout(4 * 16)  # 4 frames of 4x4 patches
    assert not layout.is_dense and layout.block_index.tolist()[5] == [1, 3, 4, 5, 6, 7, 9]

    video = torch.randn(2, 1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sparse = model.encode_video(video)
        allowed = layout_token_mask(layout.block_index, 4, 64, 1)
        for block in model.vision_encoder.blocks:
            block.attn.op = MaskedDense(allowed)
        reference = model.encode_video(video)
        for block in model.vision_encoder.blocks:
            block.attn.op = DenseAttention()
        dense = model.encode_video(video)
    torch.testing.assert_close(sparse.tokens, reference.tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse.embedding, reference.embedding, atol=1e-5, rtol=1e-5)
    assert (sparse.tokens - dense.tokens).abs().max() > 1e-2  # the pattern changes the result
