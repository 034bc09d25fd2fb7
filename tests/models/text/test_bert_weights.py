"""Loading HF BERT (and SViTT cross-attention) weights into BertFusionEncoder."""
import json

import pytest
import torch

from svitt_mm.models.text import BertFusionEncoder, bert_key_to_ours, load_bert_weights

transformers = pytest.importorskip('transformers')

TINY_BERT = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=40, type_vocab_size=2)


@pytest.fixture
def tiny_hf():
    torch.manual_seed(0)
    return transformers.BertModel(transformers.BertConfig(**TINY_BERT)).eval()


def tokens():
    ids = torch.randint(0, 100, (2, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 5:] = 0
    return ids, mask


@pytest.mark.parametrize('hf_key, ours', [
    ('embeddings.word_embeddings.weight', 'embeddings.word.weight'),
    ('bert.embeddings.position_embeddings.weight', 'embeddings.position.weight'),
    ('embeddings.token_type_embeddings.weight', 'embeddings.token_type.weight'),
    ('embeddings.LayerNorm.gamma', 'embeddings.norm.weight'),
    ('encoder.layer.3.attention.self.query.bias', 'layers.3.self_attn.query.bias'),
    ('bert.encoder.layer.11.attention.output.dense.weight', 'layers.11.self_attn.proj.weight'),
    ('encoder.layer.0.attention.output.LayerNorm.beta', 'layers.0.self_attn.norm.bias'),
    ('encoder.layer.9.crossattention.self.key.weight', 'layers.9.cross_attn.key.weight'),
    ('encoder.layer.10.crossattention.output.LayerNorm.weight', 'layers.10.cross_attn.norm.weight'),
    ('encoder.layer.2.intermediate.dense.weight', 'layers.2.ffn.fc1.weight'),
    ('encoder.layer.2.output.dense.bias', 'layers.2.ffn.fc2.bias'),
    ('encoder.layer.2.output.LayerNorm.weight', 'layers.2.ffn_norm.weight'),
    ('pooler.dense.weight', None),
    ('cls.predictions.bias', None),
    ('encoder.layer.2.attention.self.rotary.weight', None),
])
def test_key_mapping(hf_key, ours):
    assert bert_key_to_ours(hf_key) == ours


def test_save_pretrained_folder_reproduces_hf_outputs(tiny_hf, tmp_path):
    tiny_hf.save_pretrained(tmp_path)
    # Defaults are bert-base; the folder's config must replace them.
    encoder = BertFusionEncoder(pretrained=str(tmp_path), fusion_layer=2, visual_width=16)
    assert encoder.hidden_size == 32 and encoder.num_layers == 2
    encoder.init_weights()
    encoder.eval()
    ids, mask = tokens()
    with torch.no_grad():
        expected = tiny_hf(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(encoder.encode_text(ids, mask), expected, atol=1e-5, rtol=1e-5)


def test_pytorch_bin_checkpoint(tiny_hf, tmp_path):
    tiny_hf.config.to_json_file(tmp_path / 'config.json')
    torch.save(tiny_hf.state_dict(), tmp_path / 'pytorch_model.bin')
    encoder = BertFusionEncoder(pretrained=str(tmp_path), fusion_layer=1, visual_width=16)
    missing, unexpected = load_bert_weights(encoder, tmp_path)
    assert sorted(unexpected) == ['pooler.dense.bias', 'pooler.dense.weight']
    assert missing == [f'layers.1.cross_attn.{m}.{p}' for m in ('query', 'key', 'value', 'proj', 'norm')
                       for p in ('weight', 'bias')]
    assert torch.equal(encoder.layers[1].ffn.fc2.weight, tiny_hf.encoder.layer[1].output.dense.weight)


def test_svitt_checkpoint_with_prefix_and_cross_attention(tiny_hf):
    state = {f'text_encoder.bert.{k}': v for k, v in tiny_hf.state_dict().items()}
    cross = {'query': 32, 'key': 16, 'value': 16}
    for name, width in cross.items():
        state[f'text_encoder.bert.encoder.layer.1.crossattention.self.{name}.weight'] = \
            torch.randn(32, width)
        state[f'text_encoder.bert.encoder.layer.1.crossattention.self.{name}.bias'] = torch.randn(32)
    state['text_encoder.bert.encoder.layer.1.crossattention.output.dense.weight'] = torch.randn(32, 32)
    state['text_encoder.bert.encoder.layer.1.crossattention.output.dense.bias'] = torch.randn(32)
    state['text_encoder.bert.encoder.layer.1.crossattention.output.LayerNorm.weight'] = torch.randn(32)
    state['text_encoder.bert.encoder.layer.1.crossattention.output.LayerNorm.bias'] = torch.randn(32)
    state['text_encoder.cls.predictions.bias'] = torch.randn(100)
    state['vision_encoder.embeddings.cls_token'] = torch.randn(1, 1, 16)  # other prefix: ignored

    encoder = BertFusionEncoder(fusion_layer=1, visual_width=16, **{
        'vocab_size': 100, 'hidden_size': 32, 'num_layers': 2, 'num_heads': 4, 'intermediate_size': 64,
        'max_position_embeddings': 40})
    missing, unexpected = load_bert_weights(encoder, state, prefix='text_encoder.')
    assert missing == []
    assert sorted(unexpected) == ['text_encoder.bert.pooler.dense.bias',
                                  'text_encoder.bert.pooler.dense.weight',
                                  'text_encoder.cls.predictions.bias']
    key = 'text_encoder.bert.encoder.layer.1.crossattention.self.key.weight'
    assert torch.equal(encoder.layers[1].cross_attn.key.weight, state[key])
    norm = 'text_encoder.bert.encoder.layer.1.crossattention.output.LayerNorm.bias'
    assert torch.equal(encoder.layers[1].cross_attn.norm.bias, state[norm])


def test_another_width_is_refused_naming_the_setting(tiny_hf):
    encoder = BertFusionEncoder(vocab_size=100, hidden_size=48, num_layers=2, num_heads=4,
                                intermediate_size=64, max_position_embeddings=40, fusion_layer=2)
    before = encoder.embeddings.position.weight.clone()
    with pytest.raises(ValueError, match=r'BertFusionEncoder\.hidden_size is 32 in the weights but 48 in '
                                         r'the model .*strict=False'):
        load_bert_weights(encoder, tiny_hf.state_dict())
    assert torch.equal(encoder.embeddings.position.weight, before)  # nothing copied


def test_shape_mismatches_reported_key_by_key(tiny_hf):
    # Shapes that no architecture setting explains: the vocabulary and the position table.
    encoder = BertFusionEncoder(vocab_size=90, hidden_size=32, num_layers=2, num_heads=4,
                                intermediate_size=64, max_position_embeddings=30, fusion_layer=2)
    before = encoder.embeddings.position.weight.clone()
    with pytest.raises(ValueError) as info:
        load_bert_weights(encoder, tiny_hf.state_dict())
    message = str(info.value)
    assert 'embeddings.word_embeddings.weight -> embeddings.word.weight: checkpoint (100, 32) vs ' \
           'model (90, 32)' in message
    own = encoder.state_dict()
    wrong = [key for key, value in tiny_hf.state_dict().items()
             if bert_key_to_ours(key) in own and own[bert_key_to_ours(key)].shape != value.shape]
    assert len(wrong) == 2 and message.count('\n  ') == len(wrong)
    assert all(f'  {key} -> ' in message for key in wrong)
    assert torch.equal(encoder.embeddings.position.weight, before)  # nothing copied


def test_missing_offline_hub_weights_raise_readable_oserror(monkeypatch):
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    with pytest.raises(OSError, match=r"(?s)'no-such-org/no-such-bert' was not found offline.*"
                                      r"`model\.text_encoder\.pretrained`"):
        BertFusionEncoder(pretrained='no-such-org/no-such-bert')


def test_missing_local_folder_raises_readable_oserror(tmp_path):
    with pytest.raises(OSError, match='model.text_encoder.pretrained'):
        BertFusionEncoder(pretrained=str(tmp_path / 'missing'))


def test_folder_without_weights_raises_readable_oserror(tiny_hf, tmp_path):
    tiny_hf.config.to_json_file(tmp_path / 'config.json')
    encoder = BertFusionEncoder(pretrained=str(tmp_path), fusion_layer=2)
    with pytest.raises(OSError, match=r'(?s)no model\.safetensors or pytorch_model\.bin in folder.*'
                                      r'model\.text_encoder\.pretrained'):
        encoder.init_weights()


def test_non_bert_config_is_rejected(tmp_path):
    (tmp_path / 'config.json').write_text(json.dumps(
        {'model_type': 'bert', 'hidden_act': 'relu', 'hidden_size': 32}))
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        BertFusionEncoder(pretrained=str(tmp_path))
