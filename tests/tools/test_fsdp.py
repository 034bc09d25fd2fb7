"""tools/train.py --strategy fsdp (torch's fully_shard over gloo, 2 CPU processes) against plain DDP
(--launcher pytorch) on a tiny SViTT (block-sparse attention with random blocks, both kinds of token pruning):
the same losses and final evaluation from the same weights, a full checkpoint on rank 0 that DDP and
tools/test.py read, an exact resume, and the same random stream (so the same random attention blocks) on
every rank."""
import glob
import json
import os
import os.path as osp
import sys

import pytest
import torch

from mmengine.config import Config

from svitt_mm.apis import register_all_modules
from svitt_mm.registry import MODELS
from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals
from tool_helpers import ROOT, data_options, run_checked

register_safe_checkpoint_globals()

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')

# The tiny SViTT: 2 video layers with block-sparse attention (blocks of 8 tokens, 1 local + 2 random of
# 8 blocks) and [CLS] pruning after layer 1; 3 text layers, the last 2 fusing, text-guided pruning after
# the first. Four steps, checkpoints every 2, the evaluation after the last. One loader worker: with none,
# a resumed iteration-based run replays the trained batches in the main process after the RNG state was
# restored, which shifts its random stream (with DDP as with FSDP; seen as 1e-3 loss differences).
# Adam divides each gradient by its running root mean square, so a parameter whose gradient is at the
# level of rounding noise (the key biases, which softmax ignores; bias-table entries few pairs use) moves by
# up to the learning rate in a direction the reduction order decides: one CI run saw a table entry differ
# between FSDP and DDP that way. eps=1e-6 damps updates of gradients below about 1e-6 and leaves the others.
CONFIG = '''
_base_ = [{base!r}]
model = dict(
    vision_encoder=dict(embed_dims=32, num_layers=2, num_heads=2, prune_layers=(1,)),
    text_encoder=dict(pretrained=None, hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64,
                      fusion_layer=1),
    contrastive_head=dict(embed_dim=16))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=4)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
default_hooks = dict(checkpoint=dict(interval=2, by_epoch=False, max_keep_ckpts=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
train_dataloader = dict(batch_size=8, num_workers=1, persistent_workers=False)
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(eps=1e-6))
val_cfg = dict(k_test=4)
test_cfg = dict(k_test=4)
custom_imports = dict(imports=['rank_rng_probe'], allow_failed_imports=False)
custom_hooks = [dict(type='MetricsTableHook'), dict(type='RNGStateHook'),
                dict(type='BrokenMediaHook', max_skip_fraction=0.05), dict(type='CheckedLoadHook'),
                dict(type='RankRNGProbeHook')]
'''
# Writes, after every training step, a digest of torch's global generator on each rank: the training
# draws of the random attention blocks (and the ITM negatives) come from it.
PROBE = '''
import hashlib, os.path as osp
import torch
from mmengine.hooks import Hook
from svitt_mm.registry import HOOKS

@HOOKS.register_module()
class RankRNGProbeHook(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        digest = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()
        with open(osp.join(runner.work_dir, f'rng_rank{runner.rank}.txt'), 'a') as f:
            f.write(f'{runner.iter + 1} {digest}\\n')
'''
# From the same weights, FSDP and DDP compute the same forward passes on the same batches; the gradient
# means are exact (2 ranks: halving is exact, and a + b = b + a), so only the order of a few floating-point
# reductions differs (seen: the first two losses equal bit for bit, later ones within 2e-8 relative). 1e-5
# leaves room for other BLAS kernels and is still 1000x below the smallest step-to-step loss change here.
LOSS_RTOL = 1e-5


def _torchrun(port: int, *args: str) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}',
            *args, '--launcher', 'pytorch']


def _scalars(work_dir: str):
    """(losses by iteration, the last evaluation's metrics) from the run's scalars.json."""
    (path,) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    losses, metrics = {}, {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record:
                losses[record['iter']] = record['loss']
            elif 't2v/R@1' in record:
                metrics = {key: value for key, value in record.items() if '/' in key}
    return losses, metrics


@pytest.fixture(scope='module')
def runs(small_demo_data, tmp_path_factory):
    """An initial checkpoint, then DDP and FSDP trained from it (4 steps, evaluated after the last)."""
    root = tmp_path_factory.mktemp('fsdp')
    config = str(root / 'tiny_svitt.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(base=osp.join(ROOT, 'configs', 'demo', 'svitt_demo.py')))
    with open(root / 'rank_rng_probe.py', 'w') as f:
        f.write(PROBE)
    # Both runs start from these weights: the FlexibleRunner builds the model after the data loaders, the
    # Runner before them, so from the seed alone the two would draw different initial weights.
    register_all_modules()
    model = MODELS.build(Config.fromfile(config, import_custom_modules=False).model)
    model.init_weights()
    init = str(root / 'init.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), init)
    options = data_options(small_demo_data) + [f'load_from={init}']
    env = pytest.MonkeyPatch()  # the tools find the probe hook's module (tool_env copies os.environ)
    env.setenv('PYTHONPATH', os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]))
    work = {name: str(root / name) for name in ('ddp', 'fsdp')}
    for port, name, extra in [(29541, 'ddp', []), (29542, 'fsdp', ['--strategy', 'fsdp'])]:
        run_checked(_torchrun(port, 'tools/train.py', config, '--work-dir', work[name], *extra,
                              '--cfg-options', *options))
    yield root, config, options, work
    env.undo()


def test_fsdp_matches_ddp_losses_and_evaluation(runs):
    _, _, _, work = runs
    ddp_losses, ddp_metrics = _scalars(work['ddp'])
    fsdp_losses, fsdp_metrics = _scalars(work['fsdp'])
    assert sorted(fsdp_losses) == [1, 2, 3, 4] and sorted(ddp_losses) == [1, 2, 3, 4]
    assert fsdp_losses == pytest.approx(ddp_losses, rel=LOSS_RTOL)
    # R@k moves in steps of 1.4 (72 queries); equal weights to ~1e-7 rank every query the same.
    assert 't2v/R@1' in fsdp_metrics and fsdp_metrics == pytest.approx(ddp_metrics, abs=1e-6)


def test_every_rank_draws_the_same_random_blocks(runs):
    """Each rank draws its random attention blocks from torch's global generator, seeded alike on every
    rank: the streams must stay equal, because a checkpoint stores rank 0's generator state and a resumed
    run gives it to every rank."""
    _, _, _, work = runs
    for name in ('ddp', 'fsdp'):
        per_rank = [open(osp.join(work[name], f'rng_rank{rank}.txt')).read() for rank in (0, 1)]
        assert per_rank[0] == per_rank[1] and len(per_rank[0].splitlines()) == 4
    # ... and FSDP draws what DDP draws.
    assert open(osp.join(work['fsdp'], 'rng_rank0.txt')).read() == \
        open(osp.join(work['ddp'], 'rng_rank0.txt')).read()


def test_fsdp_checkpoint_is_a_full_single_process_checkpoint(runs):
    _, _, _, work = runs
    fsdp, ddp = (torch.load(osp.join(work[name], 'iter_4.pth'), map_location='cpu', weights_only=True)
                 for name in ('fsdp', 'ddp'))
    assert fsdp['meta']['iter'] == 4 and 'rng_state' in fsdp
    assert fsdp['state_dict'].keys() == ddp['state_dict'].keys()
    for key, value in ddp['state_dict'].items():
        assert type(fsdp['state_dict'][key]) is torch.Tensor, key  # plain tensors, not shards
        torch.testing.assert_close(fsdp['state_dict'][key], value, rtol=1e-4, atol=1e-6,
                                   msg=lambda message, key=key: f'{key}: {message}')
    assert fsdp['optimizer']['param_groups'] == ddp['optimizer']['param_groups']
    assert fsdp['optimizer']['state'].keys() == ddp['optimizer']['state'].keys()
    for index, state in ddp['optimizer']['state'].items():
        torch.testing.assert_close(fsdp['optimizer']['state'][index]['exp_avg_sq'], state['exp_avg_sq'],
                                   rtol=1e-4, atol=1e-9)


def test_fsdp_resumes_exactly_and_its_checkpoint_evaluates_in_one_process(runs):
    root, config, options, work = runs
    fsdp_losses, fsdp_metrics = _scalars(work['fsdp'])
    resumed = str(root / 'resumed')
    run_checked(_torchrun(29543, 'tools/train.py', config, '--work-dir', resumed, '--strategy', 'fsdp',
                          '--resume', osp.join(work['fsdp'], 'iter_2.pth'), '--cfg-options', *options))
    losses, metrics = _scalars(resumed)
    assert sorted(losses) == [3, 4]
    assert losses == pytest.approx({i: fsdp_losses[i] for i in (3, 4)}, rel=LOSS_RTOL)
    assert metrics == pytest.approx(fsdp_metrics, abs=1e-6)

    out = str(root / 'test_metrics.json')
    run_checked([sys.executable, 'tools/test.py', config, osp.join(work['fsdp'], 'iter_4.pth'), '--work-dir',
                 str(root / 'test'), '--out', out, '--cfg-options', *options])
    with open(out) as f:
        single = json.load(f)
    ranked = {key: value for key, value in single.items() if '/' in key}  # R@k, MdR, MnR of both stages
    assert 't2v/R@1' in ranked and ranked == pytest.approx({key: fsdp_metrics[key] for key in ranked}, abs=1e-6)
