"""LanguageModelHead: HF BERT-MLM parity, weight tying and loading of ``cls.predictions.*``."""
import pytest
import torch
from torch import nn

from svitt_mm.models.text import LanguageModelHead
from svitt_mm.models.text.bert_weights import lm_head_key_to_ours
from svitt_mm.registry import FUSION_HEADS

transformers = pytest.importorskip('transformers')

TINY_BERT = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=16)


@pytest.fixture(scope='module')
def tiny_mlm_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(transformers.BertConfig(**TINY_BERT)).eval()
    with torch.no_grad():  # make every head tensor distinctive (HF initialises the bias to zeros)
        model.cls.predictions.bias.normal_()
        model.cls.predictions.transform.LayerNorm.weight.uniform_(0.5, 1.5)
        model.cls.predictions.transform.LayerNorm.bias.normal_()
    folder = tmp_path_factory.mktemp('tiny_mlm')
    model.save_pretrained(folder)
    return folder, model


@pytest.mark.parametrize('hf_key, ours', [
    ('cls.predictions.transform.dense.weight', 'dense.weight'),
    ('cls.predictions.transform.dense.bias', 'dense.bias'),
    ('cls.predictions.transform.LayerNorm.gamma', 'norm.weight'),
    ('cls.predictions.transform.LayerNorm.bias', 'norm.bias'),
    ('cls.predictions.bias', 'bias'),
    ('cls.predictions.decoder.bias', 'bias'),
    ('cls.predictions.decoder.weight', 'decoder.weight'),
    ('cls.seq_relationship.weight', None),
    ('bert.embeddings.word_embeddings.weight', None),
])
def test_key_mapping(hf_key, ours):
    assert lm_head_key_to_ours(hf_key) == ours


def test_registered_and_formula():
    head = FUSION_HEADS.build(dict(type='LanguageModelHead', hidden_size=8, vocab_size=11))
    states = torch.randn(2, 3, 8)
    hidden = nn.functional.layer_norm(nn.functional.gelu(head.dense(states)), (8,), head.norm.weight,
                                      head.norm.bias, eps=1e-12)
    expected = hidden @ head.decoder.weight.t() + head.bias
    torch.testing.assert_close(head(states), expected)
    assert head(states).shape == (2, 3, 11)


@pytest.mark.parametrize('tied', [False, True])
def test_loading_reproduces_bert_for_masked_lm_logits(tiny_mlm_folder, tied):
    folder, hf = tiny_mlm_folder
    head = LanguageModelHead(16, 50, pretrained=str(folder))
    if tied:
        embedding = nn.Embedding(50, 16)
        embedding.weight.data.copy_(hf.bert.embeddings.word_embeddings.weight)
        head.tie_to(embedding)
    head.init_weights()
    states = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(head(states), hf.cls(states), atol=1e-5, rtol=1e-5)
        if tied:  # loading must not touch the shared embedding table
            torch.testing.assert_close(embedding.weight, hf.bert.embeddings.word_embeddings.weight)


def test_loading_with_prefix_from_state_dict(tiny_mlm_folder):
    _, hf = tiny_mlm_folder
    state = {f'text_encoder.{k}': v for k, v in hf.state_dict().items()}
    head = LanguageModelHead(16, 50)
    missing, unexpected = head.load_pretrained(state, prefix='text_encoder.')
    assert missing == [] and unexpected == []
    states = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(head(states), hf.cls(states), atol=1e-5, rtol=1e-5)


def test_checkpoint_without_mlm_head_is_a_readable_error(tmp_path):
    transformers.BertModel(transformers.BertConfig(**TINY_BERT)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match='no BERT masked-LM head weights'):
        LanguageModelHead(16, 50).load_pretrained(str(tmp_path))


def test_tied_weight_is_really_shared():
    embedding = nn.Embedding(11, 8)
    head = LanguageModelHead(8, 11)
    head.tie_to(embedding)
    assert head.is_tied and head.decoder.weight is embedding.weight
    model = nn.ModuleDict(dict(embedding=embedding, head=head))
    assert len(list(model.parameters())) == 6  # embedding + dense (2) + norm (2) + bias: no copy
    before = embedding.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    head(torch.randn(4, 8)).logsumexp(-1).sum().backward()
    optimizer.step()
    assert not torch.equal(embedding.weight, before)  # the head's gradient moved the embedding table
    assert head.decoder.weight is embedding.weight
    head.init_weights()  # re-initialising the head leaves the shared table alone
    assert head.decoder.weight is embedding.weight
    torch.testing.assert_close(head.decoder.weight, embedding.weight)
    with pytest.raises(ValueError, match=r'does not match.*\(11, 8\)'):
        LanguageModelHead(8, 11).tie_to(nn.Embedding(12, 8))
