"""CaptionTwinBatchSampler: twins share batches, every sample is used once per epoch, the shuffle is
per-epoch deterministic, ranks split the global batches; and it runs from a config through a Runner-built
dataloader on the demo annotation format."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.dataset import BaseDataset, DefaultSampler
from mmengine.runner import Runner

from svitt_mm.datasets import CaptionTwinBatchSampler
from svitt_mm.datasets.caption_twin_batch_sampler import twin_key
from svitt_mm.datasets.demo import build_temporal_shapes
from svitt_mm.apis import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SWAP = [('left', 'right'), ('grows', 'shrinks')]


class Captions(BaseDataset):
    def __init__(self, captions):
        self.captions = captions
        super().__init__()

    def load_data_list(self):
        return [dict(captions=caption if isinstance(caption, list) else [caption]) for caption in self.captions]


def demo_like(videos_per_caption=3):
    captions = []
    for shape in ('circle', 'square'):
        for motion in ('moves left', 'moves right', 'grows', 'shrinks'):
            captions += [f'a red {shape} {motion}'] * videos_per_caption
    return captions + ['a red circle spins']  # no twin


def build(captions, batch_size=4, seed=0, shuffle=True, **kwargs):
    dataset = Captions(captions)
    return dataset, CaptionTwinBatchSampler(DefaultSampler(dataset, shuffle=shuffle, seed=seed), batch_size,
                                            SWAP, **kwargs)


def test_twin_key_is_shared_by_twins_only():
    partner = {'left': 'right', 'right': 'left'}
    assert twin_key('A red circle moves left', partner) == twin_key('a red circle moves right', partner)
    assert twin_key('a red circle moves left', partner) != twin_key('a blue circle moves right', partner)


def test_every_batch_is_made_of_twin_couples_and_every_sample_is_used_once():
    captions = demo_like()
    dataset, batches = build(captions)
    assert batches.num_twin_pairs == 4
    epoch = list(batches)
    assert len(epoch) == len(batches) == len(captions) // 4
    seen = [index for batch in epoch for index in batch]
    assert len(seen) == len(set(seen)) == len(epoch) * 4
    partner = {'left': 'right', 'right': 'left', 'grows': 'shrinks', 'shrinks': 'grows'}
    coupled = 0
    for batch in epoch:
        for a, b in zip(batch[::2], batch[1::2]):
            ca, cb = captions[a], captions[b]
            if ca != cb and twin_key(ca, partner) == twin_key(cb, partner):
                coupled += 1
    assert coupled == len(seen) // 2  # the twinless sample is the odd one out: last, and dropped


def test_shuffle_depends_on_seed_and_epoch_only():
    captions = demo_like()
    _, first = build(captions, seed=3)
    _, again = build(captions, seed=3)
    assert list(first) == list(again)
    first.set_epoch(1)
    assert list(first) != list(again)
    _, ordered = build(captions, shuffle=False)
    assert list(ordered) == list(build(captions, shuffle=False)[1])


def test_ranks_split_each_global_batch():
    captions = demo_like()
    ranks = [list(build(captions, batch_size=2, rank=r, world_size=2)[1]) for r in range(2)]
    whole = list(build(captions, batch_size=4)[1])
    assert len(ranks[0]) == len(ranks[1]) == len(whole)
    assert [a + b for a, b in zip(*ranks)] == whole


def test_readable_errors():
    with pytest.raises(ValueError, match='swap_words must be pairs'):
        CaptionTwinBatchSampler(DefaultSampler(Captions(demo_like())), 4, [('left', 'left')])
    with pytest.raises(ValueError, match='do not fill one global batch'):
        build(['a circle moves left'], batch_size=4)
    with pytest.raises(ValueError, match='exactly one caption'):
        CaptionTwinBatchSampler(DefaultSampler(Captions([['x', 'y']])), 1, SWAP)


def test_built_by_the_runner_from_the_demo_config(tmp_path):
    register_all_modules()
    demo = build_temporal_shapes(str(tmp_path), videos_per_caption=1, num_frames=4)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/svitt_twins_demo.py'))
    loader_cfg = cfg.train_dataloader
    loader_cfg.dataset.update(ann_file=demo['train'], media_root=demo['media_root'])
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg.to_dict(), seed=0)
    sampler = loader.batch_sampler
    assert isinstance(sampler, CaptionTwinBatchSampler) and sampler.num_twin_pairs > 0
    batch = next(iter(sampler))
    captions = [loader.dataset.get_data_info(i)['captions'][0] for i in batch]
    assert len(batch) == cfg.train_dataloader.batch_size
    assert captions[0] != captions[1] and captions[0].split()[:3] == captions[1].split()[:3]
