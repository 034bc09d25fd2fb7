"""VideoQADataPreprocessor: normalised clips, stacked questions and flattened answers with owners."""
import pytest
import torch

from svitt_mm.models.qa_data_preprocessor import VideoQADataPreprocessor


def sample(num_answers, idx, qtype=None):
    return dict(question_ids=torch.full((4,), idx), question_mask=torch.tensor([1, 1, 1, 0]),
                answer_ids=torch.arange(num_answers * 3).view(num_answers, 3) + 10 * idx,
                answer_mask=torch.ones(num_answers, 3, dtype=torch.long),
                answer_weights=torch.full((num_answers,), 1.0 / num_answers),
                answers=[f'answer {idx}'], question_id=f'q{idx}', question_type=qtype, sample_idx=idx)


def test_batch_layout_and_values():
    pre = VideoQADataPreprocessor(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    videos = [torch.full((1, 2, 3, 4, 4), 50, dtype=torch.uint8) for _ in range(3)]
    out = pre(dict(inputs=videos, data_samples=[sample(2, 0, 'size'), sample(1, 1), sample(3, 2)]))
    assert out['inputs'].shape == (3, 1, 2, 3, 4, 4)
    assert out['inputs'][0, 0, 0, :, 0, 0].tolist() == [20.0, 7.5, 4.0]
    data = out['data_samples']
    assert data['question_ids'][:, 0].tolist() == [0, 1, 2] and data['question_mask'].shape == (3, 4)
    assert data['answer_owner'].tolist() == [0, 0, 1, 2, 2, 2]
    assert data['answer_counts'].tolist() == [2, 1, 3]
    assert data['answer_ids'][:, 0].tolist() == [0, 3, 10, 20, 23, 26]
    torch.testing.assert_close(data['answer_weights'], torch.tensor([.5, .5, 1., 1 / 3, 1 / 3, 1 / 3]))
    assert data['meta'][0] == dict(question_id='q0', answers=['answer 0'], question_type='size',
                                   sample_idx=0)


def test_pseudo_collated_batches_are_refused_readably():
    pre = VideoQADataPreprocessor()
    videos = [torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8)]
    with pytest.raises(ValueError, match='video_text_collate'):
        pre(dict(inputs=videos, data_samples={'question_ids': [torch.zeros(4)]}))
    broken = sample(1, 0)
    del broken['answer_weights']
    with pytest.raises(KeyError, match='answer_weights'):
        pre(dict(inputs=videos, data_samples=[broken]))
