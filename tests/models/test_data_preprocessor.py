import pytest
import torch
from mmengine.dataset import pseudo_collate

from svitt_mm.datasets.transforms.formatting import video_text_collate
from svitt_mm.models.data_preprocessor import VideoTextDataPreprocessor
from svitt_mm.registry import MODELS


def packed_item(video_id, sample_idx, num_captions, length=5, shape=(2, 3, 3, 4, 4)):
    text_ids = torch.arange(num_captions * length).view(num_captions, length) + 100 * sample_idx
    return dict(inputs=torch.randint(0, 256, shape, dtype=torch.uint8),
                data_samples=dict(text_ids=text_ids, text_mask=torch.ones_like(text_ids),
                                  video_id=video_id, sample_idx=sample_idx,
                                  captions=[f'video {sample_idx} caption {i}' for i in range(num_captions)]))


def test_default_normalisation_maps_0_255_to_minus1_1():
    items = [packed_item(0, 0, 1), packed_item(1, 1, 1)]
    items[0]['inputs'][0, 0, 0] = torch.tensor([[0, 255, 127, 128]] * 4, dtype=torch.uint8)
    out = MODELS.build(dict(type='VideoTextDataPreprocessor'))(video_text_collate(items))
    video = out['inputs']
    assert video.dtype == torch.float32 and video.shape == (2, 2, 3, 3, 4, 4)
    torch.testing.assert_close(video[0, 0, 0, 0, 0], torch.tensor([-1.0, 1.0, -0.5 / 127.5, 0.5 / 127.5]))
    expected = (torch.stack([item['inputs'] for item in items]).float() - 127.5) / 127.5
    torch.testing.assert_close(video, expected, rtol=0, atol=0)


def test_per_channel_mean_and_std():
    item = packed_item(0, 0, 1)
    item['inputs'][:] = 100
    out = VideoTextDataPreprocessor(mean=(10, 20, 30), std=(1, 2, 4))(video_text_collate([item]))
    assert out['inputs'][0, 1, 2, :, 0, 0].tolist() == [90.0, 40.0, 17.5]


def test_text_owner_bookkeeping_with_eval_items():
    items = [packed_item(4, 10, 3), packed_item(2, 11, 1), packed_item(4, 12, 2)]
    out = VideoTextDataPreprocessor()(video_text_collate(items))['data_samples']
    assert out['text_owner'].tolist() == [0, 0, 0, 1, 2, 2]
    assert torch.equal(out['text_ids'], torch.cat([item['data_samples']['text_ids'] for item in items]))
    assert out['text_ids'].dtype == out['text_mask'].dtype == out['text_owner'].dtype == torch.long
    assert out['text_mask'].shape == (6, 5)
    assert out['video_ids'].tolist() == [4, 2, 4] and out['sample_idx'].tolist() == [10, 11, 12]
    assert out['captions'][3] == 'video 11 caption 0' and len(out['captions']) == 6
    # each caption's owner holds the caption's own text ids (sample_idx * 100 offset)
    assert torch.equal(out['text_ids'][:, 0] // 100, out['sample_idx'][out['text_owner']])


def test_dict_of_lists_matches_list_of_dicts():
    items = [packed_item(0, 0, 2), packed_item(1, 1, 1)]
    as_list = video_text_collate(items)
    as_dict = dict(inputs=as_list['inputs'],
                   data_samples={key: [s[key] for s in as_list['data_samples']]
                                 for key in as_list['data_samples'][0]})
    preprocessor = VideoTextDataPreprocessor()
    first, second = preprocessor(as_list), preprocessor(as_dict)
    assert torch.equal(first['inputs'], second['inputs'])
    for key, value in first['data_samples'].items():
        assert (torch.equal(value, second['data_samples'][key]) if torch.is_tensor(value)
                else value == second['data_samples'][key])


def test_training_batch_has_one_caption_per_video():
    out = VideoTextDataPreprocessor()(video_text_collate([packed_item(i, i, 1) for i in range(4)]))
    assert out['data_samples']['text_ids'].shape[0] == 4
    assert out['data_samples']['text_owner'].tolist() == [0, 1, 2, 3]


def test_pseudo_collate_transposition_is_reported():
    batch = pseudo_collate([packed_item(0, 0, 1), packed_item(1, 1, 1)])
    with pytest.raises(ValueError, match='video_text_collate'):
        VideoTextDataPreprocessor()(batch)


def test_mismatched_video_shapes_are_reported():
    items = [packed_item(0, 0, 1), packed_item(1, 1, 1, shape=(2, 3, 3, 4, 6))]
    with pytest.raises(ValueError, match=r'\(2, 3, 3, 4, 6\)'):
        VideoTextDataPreprocessor()(video_text_collate(items))


def test_bad_mean_std():
    with pytest.raises(ValueError, match='std'):
        VideoTextDataPreprocessor(std=(1, 0, 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_outputs_follow_the_device():
    preprocessor = VideoTextDataPreprocessor().to('cuda')
    out = preprocessor(video_text_collate([packed_item(0, 0, 2), packed_item(1, 1, 1)]))
    assert out['inputs'].is_cuda
    assert all(value.is_cuda for value in out['data_samples'].values() if torch.is_tensor(value))
    cpu = VideoTextDataPreprocessor()(video_text_collate([packed_item(0, 0, 2), packed_item(1, 1, 1)]))
    assert out['data_samples']['text_owner'].cpu().tolist() == cpu['data_samples']['text_owner'].tolist()
