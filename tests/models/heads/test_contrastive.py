"""ContrastiveHead with negatives gathered across ranks: a 2-process gloo run equals one process on the
concatenated batch (loss, and gradients once averaged over the ranks as DDP does)."""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from svitt_mm.models.heads import ContrastiveHead
from svitt_mm.models.heads.contrastive import positive_targets

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


def soft_cross_entropy_reference(logits, targets):
    """The loss written out: mean over rows of ``-sum_j targets[i, j] * log_softmax(logits)[i, j]``."""
    return -(targets * logits.log_softmax(dim=1)).sum(1).mean()


def test_local_loss_is_the_soft_target_cross_entropy_written_out():
    gen = torch.Generator().manual_seed(1)
    contrastive = ContrastiveHead(DIM, DIM, embed_dim=DIM, temperature=0.1)
    video = torch.nn.functional.normalize(torch.randn(5, DIM, generator=gen), dim=-1).requires_grad_()
    text = torch.nn.functional.normalize(torch.randn(6, DIM, generator=gen), dim=-1).requires_grad_()
    # videos 0 and 3 share id 7 (two positives per text row); video 4 (id 9) has no text: an all-zero row
    video_ids, text_ids = torch.tensor([7, 1, 2, 7, 9]), torch.tensor([7, 1, 1, 2, 7, 3])
    loss, logits = contrastive.loss(video, text, video_ids, text_ids)
    grads = torch.autograd.grad(loss, (video, text))

    reference_logits = video @ text.t() / contrastive.temperature
    v2t = soft_cross_entropy_reference(reference_logits, positive_targets(video_ids, text_ids))
    t2v = soft_cross_entropy_reference(reference_logits.t(), positive_targets(text_ids, video_ids))
    reference = (v2t + t2v) / 2
    torch.testing.assert_close(logits, reference_logits, rtol=0, atol=0)
    torch.testing.assert_close(loss, reference, rtol=1e-6, atol=1e-7)
    for grad, reference_grad in zip(grads, torch.autograd.grad(reference, (video, text))):
        torch.testing.assert_close(grad, reference_grad, rtol=1e-5, atol=1e-7)
