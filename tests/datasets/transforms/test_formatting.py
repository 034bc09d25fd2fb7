import numpy as np
import pytest
import torch
from svitt_mm.registry import FUNCTIONS

from svitt_mm.datasets.transforms.formatting import PackVideoTextInputs, video_text_collate


def packed_results(num_clips=2, clip_len=3, num_captions=2):
    imgs = np.stack([np.full((4, 5, 3), (i, 100 + i, 200 + i), np.uint8)
                     for i in range(num_clips * clip_len)])
    return dict(imgs=imgs, num_clips=num_clips, clip_len=clip_len,
                text_ids=np.arange(num_captions * 6).reshape(num_captions, 6),
                text_mask=np.ones((num_captions, 6), np.int64),
                captions=[f'caption {i}' for i in range(num_captions)], video_id=7, sample_idx=3)


def test_pack_layout_and_values():
    packed = PackVideoTextInputs()(packed_results())
    video = packed['inputs']
    assert video.dtype == torch.uint8 and video.shape == (2, 3, 3, 4, 5)
    for k in range(2):
        for t in range(3):
            frame = k * 3 + t
            assert video[k, t, :, 0, 0].tolist() == [frame, 100 + frame, 200 + frame]
    sample = packed['data_samples']
    assert sample['text_ids'].dtype == torch.long and sample['text_ids'].shape == (2, 6)
    assert sample['text_ids'][1].tolist() == list(range(6, 12))
    assert sample['text_mask'].dtype == torch.long
    assert sample['video_id'] == 7 and sample['sample_idx'] == 3
    assert sample['captions'] == ['caption 0', 'caption 1']


def test_pack_names_missing_keys_and_their_producer():
    results = packed_results()
    del results['text_ids'], results['clip_len']
    with pytest.raises(KeyError, match=r"'clip_len' \(set by SampleFrames\).*'text_ids' \(set by "
                                       r"TokenizeCaptions\)"):
        PackVideoTextInputs()(results)


def test_pack_checks_frame_count():
    results = packed_results()
    results['imgs'] = results['imgs'][:5]
    with pytest.raises(ValueError, match=r'num_clips \* clip_len = 6'):
        PackVideoTextInputs()(results)


def test_collate_keeps_items_apart():
    items = [PackVideoTextInputs()(packed_results(num_captions=n)) for n in (1, 3)]
    batch = video_text_collate(items)
    assert [v.shape for v in batch['inputs']] == [(2, 3, 3, 4, 5)] * 2
    assert [len(s['captions']) for s in batch['data_samples']] == [1, 3]
    assert FUNCTIONS.get('video_text_collate') is video_text_collate


def qa_results(num_clips=2, clip_len=3):
    results = packed_results(num_clips, clip_len)
    for key in ('text_ids', 'text_mask', 'captions', 'video_id'):
        del results[key]
    results.update(question_ids=np.arange(5), question_mask=np.array([1, 1, 1, 0, 0]),
                   answer_ids=np.array([[101, 7, 102], [101, 8, 102]]), answer_mask=np.ones((2, 3), np.int64),
                   answer_weights=np.array([0.75, 0.25], np.float32), answers=['a', 'a', 'a', 'b'],
                   question_id='q3', question_type='size', question='grows?')
    return results


def test_pack_qa_layout_and_values():
    from svitt_mm.datasets.transforms.formatting import PackVideoQAInputs
    packed = PackVideoQAInputs()(qa_results())
    assert torch.equal(packed['inputs'], PackVideoTextInputs()(packed_results())['inputs'])
    sample = packed['data_samples']
    assert sample['question_ids'].tolist() == [0, 1, 2, 3, 4] and sample['question_ids'].dtype == torch.long
    assert sample['question_mask'].tolist() == [1, 1, 1, 0, 0]
    assert sample['answer_ids'].tolist() == [[101, 7, 102], [101, 8, 102]]
    assert sample['answer_weights'].tolist() == [0.75, 0.25]
    assert sample['answers'] == ['a', 'a', 'a', 'b'] and sample['question_id'] == 'q3'
    assert sample['question_type'] == 'size' and sample['sample_idx'] == 3


def test_pack_qa_names_missing_keys_and_checks_frames():
    from svitt_mm.datasets.transforms.formatting import PackVideoQAInputs
    results = qa_results()
    del results['answer_weights']
    with pytest.raises(KeyError, match="'answer_weights' \\(set by TokenizeQA\\)"):
        PackVideoQAInputs()(results)
    results = qa_results()
    results['clip_len'] = 4
    with pytest.raises(ValueError, match='num_clips \\* clip_len = 8'):
        PackVideoQAInputs()(results)
