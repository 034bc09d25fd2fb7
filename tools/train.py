"""Train a svitt_mm model with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
                          [--launcher none|pytorch|slurm|mpi] [--strategy ddp|fsdp|deepspeed]
                          [--seed N] [--deterministic] [--no-validate]

Distributed: ``torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch`` (tools/dist_train.sh,
tools/slurm_train.sh; several nodes: docs/scaling.md); on a machine without CUDA the processes talk over gloo.
``--strategy`` switches to MMEngine's FlexibleRunner with that strategy: ``ddp``, ``fsdp`` (torch's
fully_shard: parameters, gradients and optimizer states sharded; CPU and GPU) or ``deepspeed`` (ZeRO-2, bf16;
CUDA only, ``pip install -e ".[deepspeed]"``).
"""
import argparse
import os

import torch
from mmengine.config import Config

from svitt_mm.apis import (STRATEGIES, check_before_run, check_training_batches, default_work_dir,
                           finish_distributed, load_config, register_all_modules, retain_freed_memory,
                           setup_distributed, use_strategy)
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.registry import RUNNERS
from svitt_mm.utils.errors import UserError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a video-text model')
    parser.add_argument('config', help='config file (Python)')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the latest checkpoint in the work dir if no '
                        'path is given')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (CUDA only; bf16 where supported, else fp16)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher for distributed training')
    parser.add_argument('--strategy', choices=sorted(STRATEGIES), default=None,
                        help='train with MMEngine\'s FlexibleRunner and this strategy under a launcher: '
                        'fsdp shards parameters, gradients and optimizer states (CPU or GPU); deepspeed is '
                        'ZeRO-2 in bf16 (CUDA only; pip install -e ".[deepspeed]")')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--deterministic', action='store_true',
                        help='use deterministic algorithms (slower)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args) -> Config:
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        if not torch.cuda.is_available():
            raise UserError('--amp needs a CUDA GPU (MMEngine\'s AmpOptimWrapper refuses CPU)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.pop('max_skipped_steps', None)  # AmpOptimWrapper's scaler skips inf steps
        cfg.optim_wrapper.dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    randomness = dict(cfg.get('randomness') or {})
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.deterministic:
        randomness['deterministic'] = True
    cfg.randomness = randomness
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


def main(argv=None):
    args = parse_args(argv)
    retain_freed_memory()  # CPU steps reuse their large buffers instead of page-faulting them in
    register_all_modules()
    cfg = build_config(args)
    check_before_run(cfg, args.config)
    setup_distributed(cfg)
    if args.strategy:
        use_strategy(cfg, args.strategy)
    runner = RUNNERS.build(cfg)  # cfg.runner_type picks the Runner class (default: Runner)
    check_training_batches(runner)
    runner.train()
    del runner  # before the process group goes (see finish_distributed)
    finish_distributed()


if __name__ == '__main__':
    run_tool(main)
