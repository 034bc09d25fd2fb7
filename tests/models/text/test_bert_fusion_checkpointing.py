"""BertFusionEncoder(with_cp=True): same states, pruning indices and gradients as without checkpointing
(training mode, dropout on, text-guided pruning)."""
import torch

from svitt_mm.models.text import BertFusionEncoder


def build(with_cp: bool) -> BertFusionEncoder:
    torch.manual_seed(0)
    return BertFusionEncoder(vocab_size=50, hidden_size=32, num_layers=3, num_heads=4, intermediate_size=48,
                             max_position_embeddings=16, fusion_layer=1, visual_width=24, dropout=0.1,
                             pruner=dict(type='TextGuidedPruner', keep_rate=0.5, layer=0),
                             with_cp=with_cp).train()


def test_checkpointing_keeps_states_indices_and_gradients():
    ids = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    results = []
    for with_cp in (False, True):
        encoder = build(with_cp)
        visual = torch.randn(2, 9, 24, generator=torch.Generator().manual_seed(2)).requires_grad_()
        torch.manual_seed(3)  # same dropout draws
        out = encoder(ids, mask, visual)
        out.states.square().mean().backward()
        grads = {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}
        results.append((out, grads, visual.grad))
    (out, grads, visual_grad), (out_cp, grads_cp, visual_grad_cp) = results
    torch.testing.assert_close(out_cp.states, out.states, atol=1e-6, rtol=1e-5)
    assert len(out.kept_visual_indices) == 1
    assert torch.equal(out.kept_visual_indices[0], out_cp.kept_visual_indices[0])
    torch.testing.assert_close(visual_grad_cp, visual_grad, atol=1e-6, rtol=1e-5)
    assert grads.keys() == grads_cp.keys() and len(grads) > 10
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], atol=1e-6, rtol=1e-5,
                                   msg=lambda text, name=name: f'gradient of {name}: {text}')
