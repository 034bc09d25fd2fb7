"""Small pieces of the BERT encoder: padding bias, [CLS] attention row, embeddings, fp16 on GPU."""
import pytest
import torch

from svitt_mm.models.text import BertEmbeddings, BertFusionEncoder
from svitt_mm.models.text.bert_layers import cls_attention_probs, key_padding_bias


def test_key_padding_bias_is_finite_dtype_min():
    mask = torch.tensor([[True, False, True]])
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        bias = key_padding_bias(mask, dtype)
        assert bias.shape == (1, 1, 1, 3) and bias.dtype == dtype
        assert bias.flatten().tolist() == [0.0, torch.finfo(dtype).min, 0.0]
    assert key_padding_bias(None, torch.float32) is None


def test_fully_masked_row_stays_finite():
    q = torch.randn(1, 2, 3, 4)
    k = torch.randn(1, 2, 5, 4)
    probs = cls_attention_probs(q, k, torch.zeros(1, 5, dtype=torch.bool))
    torch.testing.assert_close(probs, torch.full((1, 5), 0.2))


def test_cls_attention_probs_matches_reference_and_is_float32_under_autocast():
    torch.manual_seed(0)
    q = torch.randn(2, 3, 4, 8)
    k = torch.randn(2, 3, 6, 8)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    logits = (q[:, :, 0:1] @ k.transpose(-1, -2)).squeeze(2) / 8 ** 0.5
    expected = logits.masked_fill(~mask[:, None], float('-inf')).softmax(-1).mean(1)
    torch.testing.assert_close(cls_attention_probs(q, k, mask), expected)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        probs = cls_attention_probs(q.bfloat16(), k.bfloat16(), mask)
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs, expected, atol=2e-2, rtol=0)
    assert (probs[1, 4:] == 0).all()


def test_embeddings_use_token_type_zero_and_positions():
    torch.manual_seed(0)
    embeddings = BertEmbeddings(20, 8, max_position_embeddings=10, type_vocab_size=2,
                                layer_norm_eps=1e-12, dropout=0.0)
    ids = torch.tensor([[3, 4, 5]])
    raw = (embeddings.word.weight[ids] + embeddings.position.weight[:3]
           + embeddings.token_type.weight[0])
    expected = torch.nn.functional.layer_norm(raw, (8,), embeddings.norm.weight, embeddings.norm.bias,
                                              1e-12)
    torch.testing.assert_close(embeddings(ids), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU for float16 autocast')
def test_float16_autocast_on_gpu_matches_float32():
    torch.manual_seed(0)
    encoder = BertFusionEncoder(vocab_size=50, hidden_size=64, num_layers=4, num_heads=4,
                                intermediate_size=128, fusion_layer=1, visual_width=32,
                                pruner=dict(type='TextGuidedPruner', keep_rate=0.5, layer=0))
    encoder = encoder.cuda().eval()
    ids = torch.randint(0, 50, (2, 7), device='cuda')
    text_mask = torch.ones(2, 7, device='cuda')
    text_mask[1, 3:] = 0
    visual = torch.randn(2, 17, 32, device='cuda')
    visual_mask = torch.ones(2, 17, dtype=torch.bool, device='cuda')
    visual_mask[1, 9:] = False
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
        pruned = encoder(ids, text_mask, visual, visual_mask)
    assert torch.isfinite(pruned.states).all()
    assert visual_mask.gather(1, pruned.kept_visual_indices[0]).all()
    # Without pruning (no top-k near-ties to flip), float16 stays close to float32.
    encoder.pruner = None
    with torch.no_grad():
        reference = encoder(ids, text_mask, visual, visual_mask).states
        with torch.autocast('cuda', dtype=torch.float16):
            half = encoder(ids, text_mask, visual, visual_mask).states
    torch.testing.assert_close(half.float(), reference, atol=5e-2, rtol=0)


def test_causal_key_bias_combines_order_and_padding():
    from svitt_mm.models.text.bert_layers import causal_key_bias
    mask = torch.tensor([[True, True, False]])
    bias = causal_key_bias(mask, 3, torch.float32, torch.device('cpu'))
    low = torch.finfo(torch.float32).min
    assert bias.shape == (1, 1, 3, 3)
    assert bias[0, 0].tolist() == [[0.0, low, low], [0.0, 0.0, low], [0.0, 0.0, low]]
    assert causal_key_bias(None, 2, torch.float32, torch.device('cpu'))[0, 0].tolist() == [[0.0, low],
                                                                                           [0.0, 0.0]]


def test_causal_layer_ignores_future_tokens_and_matches_masked_reference():
    from svitt_mm.models.text import BertLayer
    torch.manual_seed(0)
    layer = BertLayer(16, 2, 32, 1e-12, 0.0, visual_width=16, causal=True).eval()
    bidirectional = BertLayer(16, 2, 32, 1e-12, 0.0, visual_width=16).eval()
    bidirectional.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 16)
    context = torch.randn(2, 4, 16)
    mask = torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        out, _ = layer(x, mask, context)
        changed = x.clone()
        changed[:, 3:] = torch.randn(2, 2, 16)  # new future tokens: outputs before position 3 stay
        torch.testing.assert_close(layer(changed, mask, context)[0][:, :3], out[:, :3])
        assert not torch.allclose(bidirectional(changed, mask, context)[0][:, :3],
                                  bidirectional(x, mask, context)[0][:, :3])
        # Position i of the causal layer == the bidirectional layer run on the prefix x[:, :i+1].
        for i in range(5):
            prefix_out, _ = bidirectional(x[:, :i + 1], mask[:, :i + 1], context)
            torch.testing.assert_close(out[:, i], prefix_out[:, i], atol=1e-5, rtol=1e-5)
