"""Text-guided visual token pruning inside BertFusionEncoder's fusion layers."""
import math

import pytest
import torch

from svitt_mm.models.text import BertFusionEncoder

NUM_HEADS = 4


def make_encoder(keep_rate=0.25, layer=1, **kwargs) -> BertFusionEncoder:
    """Four layers, fusion from layer 1: fusion layers 0, 1, 2 are encoder layers 1, 2, 3."""
    cfg = dict(vocab_size=50, hidden_size=32, num_layers=4, num_heads=NUM_HEADS, intermediate_size=48,
               fusion_layer=1, visual_width=24,
               pruner=dict(type='TextGuidedPruner', keep_rate=keep_rate, layer=layer))
    cfg.update(kwargs)
    torch.manual_seed(0)
    encoder = BertFusionEncoder(**cfg)
    with torch.no_grad():  # peaked attention, so the top-k is well separated
        for param in encoder.parameters():
            param.mul_(8.0 if param.dim() == 2 else 1.0)
    return encoder


def spy_cross_attention(encoder):
    """Record (visual tokens, visual mask) each fusion layer's cross-attention receives."""
    seen = {}

    def hook(index):
        def record(module, args):
            seen[index] = (args[1].detach().clone(), None if args[2] is None else args[2].clone())
        return record

    for index, layer in enumerate(encoder.layers):
        if layer.cross_attn is not None:
            layer.cross_attn.register_forward_pre_hook(hook(index))
    return seen


def spy_cls_query_input(encoder, index):
    """Record the text states that enter cross-attention of encoder layer ``index``."""
    seen = {}
    encoder.layers[index].cross_attn.register_forward_pre_hook(
        lambda module, args: seen.update(x=args[0].detach().clone()))
    return seen


def reference_cls_probs(x, visual, visual_mask, attn):
    """Head-averaged softmax of the text [CLS] query over the visual keys, by hand: [B, Nv]."""
    batch, head_dim = x.shape[0], x.shape[-1] // NUM_HEADS
    q = attn.query(x[:, 0]).reshape(batch, NUM_HEADS, 1, head_dim)
    k = attn.key(visual).reshape(batch, visual.shape[1], NUM_HEADS, head_dim).transpose(1, 2)
    logits = (q @ k.transpose(-1, -2))[:, :, 0] / math.sqrt(head_dim)
    logits = logits.masked_fill(~visual_mask[:, None, :], float('-inf'))
    return logits.softmax(-1).mean(1)


def inputs(batch=3, num_visual=21):
    torch.manual_seed(1)
    ids = torch.randint(0, 50, (batch, 6))
    text_mask = torch.ones(batch, 6, dtype=torch.long)
    text_mask[-1, 3:] = 0
    visual = torch.randn(batch, num_visual, 24)
    visual_mask = torch.ones(batch, num_visual, dtype=torch.bool)
    visual_mask[-1, 13:] = False
    return ids, text_mask, visual, visual_mask


def test_kept_indices_are_top_k_of_cls_cross_attention_and_later_layers_see_only_them():
    encoder = make_encoder(keep_rate=0.25, layer=1).eval()
    ids, text_mask, visual, visual_mask = inputs()
    seen = spy_cross_attention(encoder)
    query_in = spy_cls_query_input(encoder, 2)  # fusion layer 1 = encoder layer 2
    with torch.no_grad():
        out = encoder(ids, text_mask, visual, visual_mask)

    (kept,) = out.kept_visual_indices
    num_keep = math.ceil(0.25 * 20)
    assert kept.shape == (3, 1 + num_keep) and kept.dtype == torch.long
    with torch.no_grad():
        probs = reference_cls_probs(query_in['x'], visual, visual_mask, encoder.layers[2].cross_attn)
    local = probs[:, 1:].masked_fill(~visual_mask[:, 1:], float('-inf'))
    expected = local.topk(num_keep, dim=-1).indices.sort(-1).values + 1
    expected = torch.cat([torch.zeros(3, 1, dtype=torch.long), expected], 1)
    assert torch.equal(kept, expected)
    # The pruning is informative: not simply the first tokens, and different per pair.
    assert not torch.equal(kept[0], torch.arange(1 + num_keep))
    assert not torch.equal(kept[0], kept[1])

    # Fusion layers 0 and 1 see all tokens; fusion layer 2 exactly the kept ones (and their mask).
    assert seen[1][0].shape[1] == seen[2][0].shape[1] == 21
    reduced, reduced_mask = seen[3]
    assert torch.equal(reduced, torch.stack([visual[b, kept[b]] for b in range(3)]))
    assert torch.equal(reduced_mask, torch.stack([visual_mask[b, kept[b]] for b in range(3)]))


def test_visual_cls_always_kept_and_padding_never_kept():
    encoder = make_encoder(keep_rate=0.5, layer=0).eval()
    ids, text_mask, visual, visual_mask = inputs()
    # Padding copies the token the text [CLS] likes most: only masking can keep it out.
    with torch.no_grad():
        favourite = encoder(ids, text_mask, visual).kept_visual_indices[0][-1, 1]
    visual[-1, 13:] = visual[-1, favourite]
    with torch.no_grad():
        unmasked = encoder(ids, text_mask, visual).kept_visual_indices[0][-1]
        kept = encoder(ids, text_mask, visual, visual_mask).kept_visual_indices[0]
    assert (unmasked >= 13).any()  # the scenario can catch a missing mask
    assert torch.equal(kept[:, 0], torch.zeros(3, dtype=torch.long))
    assert (kept[:, 1:] > 0).all()
    assert visual_mask.gather(1, kept).all()
    assert (kept[-1] < 13).all()


def test_keep_rate_one_equals_no_pruner():
    pruned = make_encoder(keep_rate=1.0, layer=0).eval()
    plain = make_encoder(keep_rate=1.0, layer=0, pruner=None).eval()
    plain.load_state_dict(pruned.state_dict())
    ids, text_mask, visual, visual_mask = inputs()
    with torch.no_grad():
        a = pruned(ids, text_mask, visual, visual_mask)
        b = plain(ids, text_mask, visual, visual_mask)
    assert torch.equal(a.kept_visual_indices[0], torch.arange(21).expand(3, 21))
    assert b.kept_visual_indices == ()
    torch.testing.assert_close(a.states, b.states, atol=1e-6, rtol=1e-6)


def test_pruning_changes_the_output():
    """Later layers really use the reduced set (not the full one)."""
    pruned = make_encoder(keep_rate=0.1, layer=0).eval()
    plain = make_encoder(keep_rate=0.1, layer=0, pruner=None).eval()
    plain.load_state_dict(pruned.state_dict())
    ids, text_mask, visual, _ = inputs()
    with torch.no_grad():
        assert not torch.allclose(pruned(ids, text_mask, visual).states,
                                  plain(ids, text_mask, visual).states, atol=1e-3)


def test_batch_of_one_train_mode_and_gradients():
    encoder = make_encoder(keep_rate=0.3, layer=0).train()
    ids, text_mask, visual, visual_mask = inputs(batch=1)
    visual.requires_grad_(True)
    out = encoder(ids, text_mask, visual, visual_mask)
    assert out.kept_visual_indices[0].shape == (1, 1 + math.ceil(0.3 * 20))
    out.states.sum().backward()
    assert visual.grad is not None and visual.grad.abs().sum() > 0
    assert encoder.layers[3].cross_attn.key.weight.grad.abs().sum() > 0


def test_autocast_bfloat16_stays_finite():
    encoder = make_encoder(keep_rate=0.5, layer=0).eval()
    ids, text_mask, visual, visual_mask = inputs()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = encoder(ids, text_mask, visual, visual_mask)
    assert torch.isfinite(out.states).all()
    kept = out.kept_visual_indices[0]
    assert visual_mask.gather(1, kept).all() and (kept[:, 0] == 0).all()


@pytest.mark.parametrize('layer', [2, 5])
def test_pruner_after_last_fusion_layer_is_rejected(layer):
    with pytest.raises(ValueError, match=f'pruner layer={layer} would prune nothing.*below 2'):
        make_encoder(layer=layer)


def test_pruner_without_layer_is_rejected():
    with pytest.raises(ValueError, match='ClsAttentionPruner has no `layer`'):
        make_encoder(pruner=dict(type='ClsAttentionPruner', keep_rate=0.5))


def test_pruning_needs_local_visual_tokens():
    encoder = make_encoder(layer=0)
    ids, text_mask, visual, _ = inputs()
    with pytest.raises(ValueError, match='Nv=1'):
        encoder(ids, text_mask, visual[:, :1])
