"""AnswerDecoder: parity with HF BertLMHeadModel (causal + cross-attention), log-likelihoods, and
SViTT's initialisation from the question encoder's last fusion layers."""
import pytest
import torch

from svitt_mm.models.text import AnswerDecoder, BertFusionEncoder, decoder_arch_from, load_bert_weights
from svitt_mm.registry import DECODERS

transformers = pytest.importorskip('transformers')

ARCH = dict(vocab_size=60, hidden_size=16, num_heads=2, intermediate_size=32, max_position_embeddings=20,
            dropout=0.0)


def answers():
    ids = torch.tensor([[1, 7, 9, 2, 0], [1, 5, 2, 0, 0], [1, 11, 12, 13, 2]])
    return ids, (ids != 0).long()


def test_matches_hf_bert_lm_head_model(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=20, is_decoder=True, add_cross_attention=True)
    hf = transformers.BertLMHeadModel(config).eval()
    with torch.no_grad():
        hf.cls.predictions.bias.normal_()
    decoder = DECODERS.build(dict(type='AnswerDecoder', num_layers=2, **ARCH)).eval()
    missing, _ = load_bert_weights(decoder, hf.state_dict())
    assert [name for name in missing if not name.startswith('head.')] == []
    decoder.head.load_pretrained(hf.state_dict())
    ids, mask = answers()
    context = torch.randn(3, 4, 16)
    context_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, encoder_hidden_states=context,
                      encoder_attention_mask=context_mask).logits
        logits = decoder(ids, mask, context, context_mask)
    valid = mask.bool()  # padded query rows are never read
    torch.testing.assert_close(logits[valid], expected[valid], atol=1e-4, rtol=1e-4)


def test_sequence_log_likelihood_counts_each_token_once():
    torch.manual_seed(1)
    decoder = AnswerDecoder(num_layers=1, **ARCH).eval()
    ids, mask = answers()
    context = torch.randn(3, 4, 16)
    with torch.no_grad():
        log_probs = decoder(ids, mask, context).log_softmax(-1)
        got = decoder.sequence_log_likelihood(ids, mask, context)
        first = decoder.first_token_log_probs(1, context)
    expected = []
    for p in range(3):
        length = int(mask[p].sum())
        expected.append(sum(log_probs[p, t - 1, ids[p, t]] for t in range(1, length)))
    torch.testing.assert_close(got, torch.stack(expected))
    # The [CLS]-only pass gives the same first-token distribution as the full teacher-forced pass.
    torch.testing.assert_close(first, log_probs[:, 0], atol=1e-5, rtol=1e-5)


def test_init_from_fusion_layers_copies_last_layers_embeddings_and_head():
    torch.manual_seed(2)
    encoder = BertFusionEncoder(vocab_size=60, hidden_size=16, num_layers=4, num_heads=2,
                                intermediate_size=32, max_position_embeddings=20, fusion_layer=1,
                                visual_width=8)
    decoder = AnswerDecoder(num_layers=2, **decoder_arch_from(encoder))
    from svitt_mm.models.text import LanguageModelHead
    mlm_head = LanguageModelHead(16, 60)
    with torch.no_grad():
        mlm_head.bias.normal_()
    kept = decoder.init_from_fusion_layers(encoder, head=mlm_head)
    # Cross-attention keys/values read 8-wide visual tokens in the encoder, 16-wide questions here.
    assert sorted(kept) == sorted(f'layers.{i}.cross_attn.{part}.weight' for i in (0, 1)
                                  for part in ('key', 'value'))
    for i, source in ((0, 2), (1, 3)):
        for name, value in encoder.layers[source].state_dict().items():
            target = decoder.layers[i].state_dict()[name]
            if f'layers.{i}.{name}' not in kept:
                assert torch.equal(target, value), name
    assert torch.equal(decoder.embeddings.word.weight, encoder.embeddings.word.weight)
    assert decoder.head.decoder.weight is decoder.embeddings.word.weight  # still tied, own copy
    assert decoder.embeddings.word.weight is not encoder.embeddings.word.weight
    assert torch.equal(decoder.head.bias, mlm_head.bias)
    assert torch.equal(decoder.head.dense.weight, mlm_head.dense.weight)
    with pytest.raises(ValueError, match='only 3'):
        AnswerDecoder(num_layers=4, **decoder_arch_from(encoder)).init_from_fusion_layers(encoder)



def test_shared_embeddings_are_one_table_and_survive_initialisation():
    torch.manual_seed(4)
    encoder = BertFusionEncoder(vocab_size=60, hidden_size=16, num_layers=3, num_heads=2,
                                intermediate_size=32, max_position_embeddings=20, fusion_layer=1,
                                visual_width=16)
    with torch.no_grad():
        encoder.embeddings.word.weight.fill_(0.5)  # stands for pretrained values
    decoder = AnswerDecoder(num_layers=2, **decoder_arch_from(encoder))
    decoder.share_embeddings(encoder.embeddings)
    assert decoder.embeddings is encoder.embeddings
    assert decoder.head.decoder.weight is encoder.embeddings.word.weight
    decoder.init_weights()
    decoder.init_from_fusion_layers(encoder)
    assert (encoder.embeddings.word.weight == 0.5).all()  # neither re-drawn nor overwritten
    with pytest.raises(ValueError, match=r'word table \(61, 16\)'):
        AnswerDecoder(num_layers=1, **decoder_arch_from(encoder)).share_embeddings(
            BertFusionEncoder(vocab_size=61, hidden_size=16, num_layers=1, num_heads=2,
                              intermediate_size=32, max_position_embeddings=20, fusion_layer=1).embeddings)
