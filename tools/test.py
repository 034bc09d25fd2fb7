"""Evaluate a checkpoint with a config's test loop and print the metrics.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
                         [--launcher none|pytorch|slurm|mpi] [--out results.json]
                         [--on-broken-media raise|exclude]

Distributed: ``torchrun --nproc_per_node=N tools/test.py CONFIG CHECKPOINT --launcher pytorch``
(tools/dist_test.sh); on a machine without CUDA the processes talk over gloo.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from svitt_mm.datasets import BrokenMediaError  # noqa: E402
from svitt_mm.datasets.broken_media import BROKEN_MEDIA_POLICIES  # noqa: E402
from svitt_mm.engine.hooks.metrics_table_hook import format_metrics_table  # noqa: E402
from svitt_mm.registry import RUNNERS  # noqa: E402
from svitt_mm.utils.cpu_allocator import retain_freed_memory  # noqa: E402
from svitt_mm.utils import (ConfigCheckError, DistributedSetupError, MissingInputError,  # noqa: E402
                            check_config, check_required_inputs, finish_distributed, register_all_modules,
                            setup_distributed, write_json)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a video-text model')
    parser.add_argument('config', help='config file (Python)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs go (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--on-broken-media', choices=[p for p in BROKEN_MEDIA_POLICIES if p != 'skip'],
                        help="videos that cannot be decoded: 'raise' (default: stop, listing them all) or "
                        "'exclude' (evaluate without them; the metrics report excluded_videos)")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_test_config(config: str, checkpoint: str, work_dir: Optional[str] = None,
                      cfg_options: Optional[dict] = None, launcher: str = 'none',
                      on_broken_media: Optional[str] = None) -> Config:
    """The config that evaluates ``checkpoint`` with ``config``'s test loop (train/val parts removed,
    ``load_from`` set, ``test_dataloader.dataset.on_broken_media`` set when given); exits with a readable
    message when the config names unknown types or bad values, or the checkpoint or test data is missing."""
    register_all_modules()
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(config))[0])
    if not osp.isfile(checkpoint):
        raise SystemExit(f'error: checkpoint {checkpoint!r} does not exist')
    cfg.load_from = checkpoint
    # Only the test split and the checkpoint are needed here.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    if on_broken_media:
        cfg.test_dataloader.dataset.on_broken_media = on_broken_media
    try:
        check_config(cfg, config)
        check_required_inputs(cfg, config)
    except (ConfigCheckError, MissingInputError) as error:
        raise SystemExit(f'error: {error}')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    retain_freed_memory()  # CPU steps reuse their large buffers instead of page-faulting them in
    cfg = build_test_config(args.config, args.checkpoint, args.work_dir, args.cfg_options, args.launcher,
                            args.on_broken_media)
    try:
        setup_distributed(cfg)
    except DistributedSetupError as error:
        raise SystemExit(f'error: {error}')
    runner = RUNNERS.build(cfg)
    try:
        metrics = runner.test()
    except BrokenMediaError as error:
        raise SystemExit(f'error: {error}')
    if is_main_process():
        print(format_metrics_table(metrics, f'test of {args.checkpoint}:') or metrics)
        if 'excluded_videos' in metrics:
            print(f"{metrics['excluded_videos']} broken videos were excluded from this evaluation")
        if args.out:
            write_json(args.out, metrics)
            print(f'metrics written to {args.out}')
    del runner  # before the process group goes (see finish_distributed)
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
