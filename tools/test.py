"""Evaluate a checkpoint with a config's test loop and print the metrics.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
                         [--launcher none|pytorch|slurm|mpi] [--out results.json]
                         [--on-broken-media raise|exclude]

Distributed: ``torchrun --nproc_per_node=N tools/test.py CONFIG CHECKPOINT --launcher pytorch``
(tools/dist_test.sh); on a machine without CUDA the processes talk over gloo.
"""
import argparse
import os

import mmengine
from mmengine.dist import is_main_process

from svitt_mm.apis import build_test_config, finish_distributed, retain_freed_memory, setup_distributed
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.datasets.broken_media import BROKEN_MEDIA_POLICIES
from svitt_mm.engine.hooks.metrics_table_hook import format_metrics_table
from svitt_mm.registry import RUNNERS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a video-text model')
    parser.add_argument('config', help='config file (Python)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs go (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
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


def main(argv=None):
    args = parse_args(argv)
    retain_freed_memory()  # CPU steps reuse their large buffers instead of page-faulting them in
    cfg = build_test_config(args.config, args.checkpoint, args.work_dir, args.cfg_options, args.launcher,
                            args.on_broken_media)
    setup_distributed(cfg)
    runner = RUNNERS.build(cfg)
    metrics = runner.test()
    if is_main_process():
        print(format_metrics_table(metrics, f'test of {args.checkpoint}:') or metrics)
        if 'excluded_videos' in metrics:
            print(f"{metrics['excluded_videos']} broken videos were excluded from this evaluation")
        if args.out:
            mmengine.dump(dict(metrics), args.out, indent=2)
            print(f'metrics written to {args.out}')
    del runner  # before the process group goes (see finish_distributed)
    finish_distributed()
    return metrics


if __name__ == '__main__':
    run_tool(main)
