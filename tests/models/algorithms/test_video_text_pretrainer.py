"""VideoTextPretrainer: MLM loss against a hand computation with a fixed mask, unchanged ITC/ITM,
loss weights, weight tying and loading a Hugging Face BERT-MLM checkpoint."""
import pytest
import torch
import torch.nn.functional as F

from svitt_mm.models.algorithms import video_text_pretrainer
from svitt_mm.registry import MODELS
from svitt_mm.apis import register_all_modules

VOCAB, PAD, CLS, SEP, MASK = 60, 0, 1, 2, 3
TINY_TEXT = dict(type='BertFusionEncoder', vocab_size=VOCAB, hidden_size=16, num_layers=3, num_heads=2,
                 intermediate_size=32, max_position_embeddings=16, dropout=0.0, fusion_layer=2)


def model_cfg(kind='VideoTextPretrainer', text=None, **extra):
    cfg = dict(
        type=kind,
        vision_encoder=dict(type='VideoBEiT', img_size=32, patch_size=16, embed_dims=16, num_layers=2,
                            num_heads=2, drop_path_rate=0.0, max_frames=2,
                            attention=dict(type='DenseAttention')),
        text_encoder=dict(TINY_TEXT, **(text or {})),
        contrastive_head=dict(embed_dim=8))
    if kind == 'VideoTextPretrainer':
        cfg.update(mask_token_id=MASK, special_token_ids=(PAD, CLS, SEP))
    cfg.update(extra)
    return cfg


def build(**kwargs):
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(**kwargs))
    model.init_weights()
    return model


def batch():
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(3, 1, 2, 3, 32, 32, generator=gen)
    ids = torch.randint(10, VOCAB, (3, 6), generator=gen)
    ids[:, 0] = CLS
    ids[:, 4] = SEP
    ids[:, 5] = PAD
    ids[0, 3:] = torch.tensor([SEP, PAD, PAD])
    mask = (ids != PAD).long()
    samples = dict(text_ids=ids, text_mask=mask, text_owner=torch.arange(3), video_ids=torch.arange(3),
                   sample_idx=torch.arange(3))
    return video, samples


def fixed_mask(ids):
    """[MASK] at (0, 1) and (2, 3), a replaced token at (1, 2); labels at those positions."""
    masked, labels = ids.clone(), torch.full_like(ids, -100)
    for (b, i), new in {(0, 1): MASK, (2, 3): MASK, (1, 2): 7}.items():
        labels[b, i] = ids[b, i]
        masked[b, i] = new
    return masked, labels


def test_mlm_loss_matches_hand_computation_and_itc_itm_are_the_retrievers(monkeypatch):
    model = build()
    video, samples = batch()
    masked, labels = fixed_mask(samples['text_ids'])
    calls = []

    def fake_mask_tokens(*args):
        calls.append(args)
        return masked, labels

    monkeypatch.setattr(video_text_pretrainer, 'mask_tokens', fake_mask_tokens)
    torch.manual_seed(5)
    losses = model(video, samples, mode='loss')
    assert set(losses) == {'loss_itc', 'loss_itm', 'loss_mlm'}
    assert calls[0][2:] == ((PAD, CLS, SEP), MASK, VOCAB, 0.5)

    # by hand: full-length states and logits, HF-style ignore_index cross-entropy
    with torch.no_grad():
        tokens = model.vision_norm(model.vision_encoder(video.flatten(0, 1)).tokens)
        states = model.text_encoder(masked, samples['text_mask'], tokens).states
        head = model.lm_head
        hidden = F.layer_norm(F.gelu(states @ head.dense.weight.t() + head.dense.bias), (16,),
                              head.norm.weight, head.norm.bias, eps=1e-12)
        logits = hidden @ model.text_encoder.embeddings.word.weight.t() + head.bias
        expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(losses['loss_mlm'].detach(), expected)

    # ITC/ITM are exactly the retrieval model's (same weights, same RNG state)
    retriever = MODELS.build(model_cfg('VideoTextRetriever'))
    retriever.load_state_dict(model.state_dict(), strict=False)
    torch.manual_seed(5)
    reference = retriever(video, samples, mode='loss')
    for key in ('loss_itc', 'loss_itm'):
        torch.testing.assert_close(losses[key], reference[key])


def test_loss_weights_scale_each_loss(monkeypatch):
    video, samples = batch()
    fixed = fixed_mask(samples['text_ids'])
    monkeypatch.setattr(video_text_pretrainer, 'mask_tokens', lambda *args: fixed)
    plain = build()
    weighted = build(loss_weights=dict(itc=0.5, mlm=2.0))
    torch.manual_seed(5)
    a = plain(video, samples, mode='loss')
    torch.manual_seed(5)
    b = weighted(video, samples, mode='loss')
    torch.testing.assert_close(b['loss_itc'], 0.5 * a['loss_itc'])
    torch.testing.assert_close(b['loss_itm'], a['loss_itm'])
    torch.testing.assert_close(b['loss_mlm'], 2.0 * a['loss_mlm'])


def test_lm_head_is_tied_to_the_word_embeddings_and_mlm_trains_them(monkeypatch):
    model = build()
    words = model.text_encoder.embeddings.word.weight
    assert model.lm_head.decoder.weight is words
    # one parameter, not two (the optimizer must not update it twice)
    assert sum(p is words for p in model.parameters()) == 1
    video, samples = batch()
    masked, labels = fixed_mask(samples['text_ids'])
    monkeypatch.setattr(video_text_pretrainer, 'mask_tokens', lambda *args: (masked, labels))
    model(video, samples, mode='loss')['loss_mlm'].backward()
    # rows of ids absent from the input get gradient only through the tied decoder
    unused = torch.ones(VOCAB, dtype=torch.bool)
    unused[masked.unique()] = False
    assert words.grad[unused].abs().sum() > 0


def test_no_masked_token_gives_zero_mlm_loss():
    model = build()
    video, samples = batch()
    tokens = torch.randn(3, 5, 16)
    ids = samples['text_ids']
    loss = model.mlm_loss(tokens, ids, samples['text_mask'], torch.full_like(ids, -100))
    assert loss.item() == 0.0


def test_bad_mlm_prob_is_named():
    register_all_modules()
    with pytest.raises(ValueError, match='mlm_prob'):
        MODELS.build(model_cfg(mlm_prob=0.0))


def test_loads_hf_bert_mlm_weights_and_stays_tied(tmp_path):
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16)).eval()
    with torch.no_grad():
        hf.cls.predictions.bias.normal_()
    hf.save_pretrained(tmp_path)
    # fusion_layer = num_layers: no fusion layers, so the text path is exactly HF's BERT
    model = build(text=dict(pretrained=str(tmp_path), fusion_layer=2),
                  lm_head=dict(pretrained=str(tmp_path))).eval()
    assert model.lm_head.decoder.weight is model.text_encoder.embeddings.word.weight
    ids = torch.randint(4, VOCAB, (2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ours = model.lm_head(model.text_encoder.encode_text(ids, mask))
        theirs = hf(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
