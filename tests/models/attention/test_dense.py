"""DenseAttention equals a hand-written softmax with padding and pair bias (values and gradients)."""
import torch
from svitt_mm.testing.attention_conformance import (assert_close_where_valid, assert_same_gradients, clone_inputs,
                                                   make_inputs, masked_attention, weighted_loss)

from svitt_mm.models.attention import DenseAttention


def test_dense_attention_matches_hand_written_softmax():
    batch, heads, num_global, num_tokens, dim = 2, 3, 2, 13, 8
    padding = torch.zeros(batch, num_tokens, dtype=torch.bool)
    padding[0, [4, 9, 12]] = True
    padding[1, 7] = True
    inputs = make_inputs(batch, heads, num_tokens, dim, seed=16, padding=padding, bias_batch=2)
    reference_inputs = clone_inputs(inputs)
    out, probs = DenseAttention()(inputs['q'], inputs['k'], inputs['v'], num_global=num_global,
                                  key_padding_mask=padding, bias=inputs['bias'])
    ref_out, ref_probs = masked_attention(reference_inputs['q'], reference_inputs['k'], reference_inputs['v'],
                                          num_global, None, padding, reference_inputs['bias'])
    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=1e-5, rtol=1e-5)
    weighted_loss(out, padding, seed=17).backward()
    weighted_loss(ref_out, padding, seed=17).backward()
    assert_same_gradients(inputs, reference_inputs)
