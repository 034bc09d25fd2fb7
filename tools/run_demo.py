"""The README's first command: build the built-in temporal demo data, train the demo models on it, evaluate
them, and print their retrieval metrics side by side with the video encoder's cost.

    python tools/run_demo.py [--data-dir data/demo/temporal_shapes] [--work-dir work_dirs/demo]
                             [--configs configs/demo/svitt_demo.py configs/demo/dense_demo.py]
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

import torch

from svitt_mm.apis import count_flops, load_config, register_all_modules
from svitt_mm.apis.cli import run_tool
from svitt_mm.datasets.demo import build_temporal_shapes
from svitt_mm.registry import MODELS

TOOLS = osp.dirname(osp.abspath(__file__))
DEFAULT_CONFIGS = ['configs/demo/svitt_demo.py', 'configs/demo/dense_demo.py']


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-dir', default='data/demo/temporal_shapes')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    return parser.parse_args()


def data_options(paths: dict) -> list:
    """--cfg-options pointing every split of a demo config at the built data."""
    options = []
    for loader, split in [('train_dataloader', 'train'), ('val_dataloader', 'test'),
                          ('test_dataloader', 'test')]:
        options += [f'{loader}.dataset.ann_file={paths[split]}',
                    f'{loader}.dataset.media_root={paths["media_root"]}']
    return options


def video_encoder_gflops(config: str) -> float:
    """GFLOPs of one forward of the video encoder on one clip of the config's training frames."""
    cfg = load_config(config)
    model = MODELS.build(cfg.model).eval()
    size = cfg.model.vision_encoder.img_size
    clip = torch.zeros(1, cfg.num_frames, 3, size, size)
    with torch.no_grad():
        return count_flops(lambda: model.vision_encoder(clip)) / 1e9


def run(cmd: list) -> None:
    print('+', ' '.join(cmd), flush=True)
    subprocess.run([sys.executable, *cmd], check=True)


def main():
    args = parse_args()
    register_all_modules()
    start = time.time()
    paths = build_temporal_shapes(args.data_dir)
    print(f'demo data ready in {args.data_dir} ({time.time() - start:.1f} s)')
    rows = []
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        work_dir = osp.join(args.work_dir, name)
        started = time.time()
        run([osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir, '--no-validate',
             '--cfg-options', *data_options(paths)])
        train_minutes = (time.time() - started) / 60
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        out = osp.join(work_dir, 'test_metrics.json')
        run([osp.join(TOOLS, 'test.py'), config, checkpoint, '--work-dir', work_dir, '--out', out,
             '--cfg-options', *data_options(paths)])
        with open(out) as f:
            metrics = json.load(f)
        rows.append((name, metrics, video_encoder_gflops(config), train_minutes))

    with open(paths['test']) as f:
        num_test = len(json.load(f))
    print(format_results(rows, num_test))


def format_results(rows: list, num_test: int) -> str:
    """The demo's summary table: final (re-ranked) and first-stage (ITC) recalls, cost, time."""
    lines = [f'\nDemo results on the temporal test split ({num_test} videos, one caption each: chance '
             f'R@1 = {100 / num_test:.1f} %, R@10 = {min(100, 1000 / num_test):.1f} %)']
    header = (f'{"model":<12}{"t2v R@1":>8}{"R@5":>6}{"R@10":>6}{"v2t R@1":>8}{"R@5":>6}{"R@10":>6}'
              f'{"R_mean":>7} |{"ITC t2v R@1":>12}{"R@10":>6} |{"video GFLOPs":>13}{"train min":>10}')
    lines += [header, '-' * len(header)]
    for name, m, gflops, minutes in rows:
        lines.append(
            f'{name:<12}{m["t2v/R@1"]:>8.1f}{m["t2v/R@5"]:>6.1f}{m["t2v/R@10"]:>6.1f}{m["v2t/R@1"]:>8.1f}'
            f'{m["v2t/R@5"]:>6.1f}{m["v2t/R@10"]:>6.1f}{m["R_mean"]:>7.1f} |{m["itc/t2v/R@1"]:>12.1f}'
            f'{m["itc/t2v/R@10"]:>6.1f} |{gflops:>13.3f}{minutes:>10.1f}')
    lines.append('t2v/v2t: after matching-head re-ranking of the top-k (the final ranking); ITC: the '
                 'contrastive first stage alone. Video GFLOPs: one clip through the video encoder.')
    return '\n'.join(lines)


if __name__ == '__main__':
    run_tool(main)
