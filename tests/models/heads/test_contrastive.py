"""ContrastiveHead with negatives gathered across ranks: a 2-process gloo run equals one process on the
concatenated batch (loss, and gradients once averaged over the ranks as DDP does)."""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from svitt_mm.models.heads import ContrastiveHead

WORLD, LOCAL, DIM = 2, 3, 8


def full_batch():
    gen = torch.Generator().manual_seed(0)
    video = torch.nn.functional.normalize(torch.randn(WORLD * LOCAL, DIM, generator=gen), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(WORLD * LOCAL, DIM, generator=gen), dim=-1)
    # video 1 (rank 0) and video 4 (rank 1) are the same video: positives across ranks
    ids = torch.tensor([0, 1, 2, 3, 1, 5])
    return video, text, ids


def head():
    return ContrastiveHead(DIM, DIM, embed_dim=DIM, temperature=0.1, gather_negatives=True)


def worker(rank, init_file, out_dir):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=WORLD)
    try:
        video, text, ids = full_batch()
        shard = slice(rank * LOCAL, (rank + 1) * LOCAL)
        video = video[shard].clone().requires_grad_()
        text = text[shard].clone().requires_grad_()
        loss, logits = head().loss(video, text, ids[shard], ids[shard])
        loss.backward()
        torch.save(dict(loss=loss.detach(), logits=logits.detach(), video_grad=video.grad,
                        text_grad=text.grad), os.path.join(out_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


def test_gathered_loss_and_gradients_equal_one_big_batch(tmp_path):
    # spawn, not fork: a fork after torch's OpenMP pool has started can deadlock the children
    mp.spawn(worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f'{rank}.pt') for rank in range(WORLD)]

    video, text, ids = full_batch()
    video.requires_grad_()
    text.requires_grad_()
    single = head()
    single.gather_negatives = False  # no process group here anyway
    loss, logits = single.loss(video, text, ids, ids)
    loss.backward()

    # DDP averages the ranks' gradients, i.e. trains on the mean of their losses
    torch.testing.assert_close(sum(r['loss'] for r in ranks) / WORLD, loss.detach())
    for rank, result in enumerate(ranks):
        shard = slice(rank * LOCAL, (rank + 1) * LOCAL)
        torch.testing.assert_close(result['video_grad'] / WORLD, video.grad[shard])
        torch.testing.assert_close(result['text_grad'] / WORLD, text.grad[shard])
        # the returned logits stay local (rank's videos x rank's texts), for hard-negative mining
        torch.testing.assert_close(result['logits'], logits.detach()[shard, shard])
    # a local-only loss differs: the test would catch a head that silently skipped the gather
    local = sum(single.loss(video[s], text[s], ids[s], ids[s])[0].detach()
                for s in (slice(0, LOCAL), slice(LOCAL, None))) / WORLD
    assert not torch.allclose(local, loss.detach())


def test_without_a_process_group_gather_is_a_no_op():
    video, text, ids = full_batch()
    gathered = head().loss(video, text, ids, ids)[0]
    plain = ContrastiveHead(DIM, DIM, embed_dim=DIM, temperature=0.1).loss(video, text, ids, ids)[0]
    torch.testing.assert_close(gathered, plain)
