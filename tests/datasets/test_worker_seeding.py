"""EpochSeededWorkers: persistent workers draw in epoch k what fresh workers started at epoch k draw."""
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from svitt_mm.datasets.worker_seeding import EpochSeededWorkers, worker_seed


class RandomDraws(EpochSeededWorkers, Dataset):
    def __init__(self):
        self.init_worker_seeding()

    def __len__(self):
        return 8

    def __getitem__(self, index):
        self.reseed_worker()
        return (index, np.random.randint(1 << 30), random.randrange(1 << 30), int(torch.randint(1 << 30, ())))


def draws(dataset, epochs, set_epoch=True):
    loader = DataLoader(dataset, batch_size=2, num_workers=2, persistent_workers=True, collate_fn=list)
    out = {}
    for epoch in epochs:
        if set_epoch:
            dataset.set_worker_epoch(7, epoch)
        out[epoch] = [item for batch in loader for item in batch]
    return out


def test_an_epoch_draws_the_same_in_persistent_and_fresh_workers():
    dataset = RandomDraws()
    uninterrupted = draws(dataset, [0, 1, 2])
    resumed = draws(dataset, [2])
    assert resumed[2] == uninterrupted[2]
    assert uninterrupted[1] != uninterrupted[2]  # epochs differ
    # without the epoch, persistent workers carry their streams on (what the seeding prevents)
    unseeded = RandomDraws()
    assert draws(unseeded, [0, 1], set_epoch=False)[1] != draws(unseeded, [1], set_epoch=False)[1]


def test_seeds_depend_on_every_part():
    seeds = {worker_seed(*key) for key in [(0, 0, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)]}
    assert len(seeds) == 5


def test_the_main_process_is_never_reseeded():
    dataset = RandomDraws()
    dataset.set_worker_epoch(7, 3)
    state = np.random.get_state()[1].copy()
    dataset.reseed_worker()
    assert (np.random.get_state()[1] == state).all()
