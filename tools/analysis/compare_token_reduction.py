"""Compare token-reduction methods of the video encoder at (nearly) equal FLOPs: train each config, then
evaluate retrieval with frames in order and reversed, and write one table, a JSON file and a plot.

    python tools/analysis/compare_token_reduction.py [--configs A.py B.py ...] [--seeds 0 1 2]
        [--work-dir work_dirs/token_reduction] [--data-dir data/demo/temporal_shapes] [--train-only-missing]
        [--cfg-options KEY=VALUE ...]

Defaults: the four configs of ``configs/demo/token_reduction/`` ([CLS]-attention pruning, random pruning,
token merging, no reduction) on the built-in temporal demo data (built first if missing). Per config:

1. video-encoder cost with ``tools/benchmark.py`` (one clip of the config's frames, random weights):
   GFLOPs of the forward (eval) and of forward+backward (train), and the forward time;
2. per seed, ``tools/train.py --seed S --no-validate`` (wall time measured), then
   ``tools/analysis/temporal_probe.py`` on the last checkpoint (retrieval with frames in order, reversed,
   shuffled and frozen).

Written to the work dir: ``results.json`` (everything), ``results.md`` (the table) and ``results.png``
(R@1 in order and reversed per config, against forward GFLOPs). Other datasets: give configs that point
at them (e.g. MSR-VTT configs) and ``--data-dir ''`` to skip building the demo data.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mmengine  # noqa: E402

from svitt_mm.apis.cli import run_tool  # noqa: E402
from svitt_mm.datasets.demo import build_temporal_shapes  # noqa: E402
from svitt_mm.utils.errors import MissingFileError, UserError  # noqa: E402

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIGS = [f'configs/demo/token_reduction/{name}.py'
                   for name in ('no_reduction', 'cls_pruning', 'random_pruning', 'token_merging')]
#: metrics of the table: (key in the probe results, column title)
METRICS = (('t2v/R@1', 't2v R@1'), ('itc/t2v/R@1', 'ITC t2v R@1'), ('R_mean', 'R_mean'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS,
                        help='configs to compare (the first is the FLOPs reference)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], help='training seeds per config')
    parser.add_argument('--work-dir', default='work_dirs/token_reduction')
    parser.add_argument('--data-dir', default='data/demo/temporal_shapes',
                        help="demo data to build if missing ('' for configs that read other data)")
    parser.add_argument('--train-only-missing', action='store_true',
                        help='reuse the checkpoint and probe results of runs that finished before')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='config overrides passed to training and evaluation of every config')
    return parser.parse_args(argv)


def run(cmd: List[str]) -> float:
    """Run a tool of this repository with this Python; return its wall time in seconds."""
    print('+', ' '.join(cmd), flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *cmd])
    if done.returncode:
        raise UserError(f'{" ".join(cmd[:2])} failed (exit status {done.returncode}); its log is above')
    return time.perf_counter() - start


def name_of(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def encoder_costs(configs: Sequence[str], frames: int, work_dir: str) -> Dict[str, dict]:
    """config name -> forward / forward+backward GFLOPs and forward ms of its video encoder, from
    ``tools/benchmark.py`` (one clip of ``frames`` frames)."""
    out = osp.join(work_dir, 'benchmark.json')
    run([osp.join(TOOLS, 'benchmark.py'), *configs, '--frames', str(frames), '--batch-size', '1', '--backward',
         '--repeats', '20', '--threads', '1', '--out', out])
    costs: Dict[str, dict] = {}
    for record in mmengine.load(out)['results']:
        entry = costs.setdefault(record['name'], {})
        entry[f'{record["phase"]}_gflops'] = record['gflops']
        entry[f'{record["phase"]}_ms'] = record['ms']
    return costs


def train_and_probe(config: str, seed: int, work_dir: str, options: Sequence[str], reuse: bool) -> dict:
    """Train ``config`` with ``seed`` and run the temporal probe on its last checkpoint."""
    run_dir = osp.join(work_dir, name_of(config), f'seed{seed}')
    probe_out = osp.join(run_dir, 'probe.json')
    summary = osp.join(run_dir, 'run.json')
    if reuse and osp.isfile(summary):
        return mmengine.load(summary)
    overrides = ['--cfg-options', *options] if options else []
    train_s = run([osp.join(TOOLS, 'train.py'), config, '--work-dir', run_dir, '--seed', str(seed),
                   '--no-validate', *overrides])
    last = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise MissingFileError(f'{config}: training wrote no {last}')
    with open(last) as f:
        checkpoint = f.read().strip()
    run([osp.join(TOOLS, 'analysis', 'temporal_probe.py'), config, checkpoint, '--work-dir', run_dir,
         '--out', probe_out, *overrides])
    probe = mmengine.load(probe_out)
    result = dict(config=config, seed=seed, train_s=train_s, checkpoint=checkpoint,
                  in_order=probe['metrics']['in order'], reversed=probe['metrics']['reversed'],
                  shuffled=probe['metrics']['shuffled'], frozen=probe['metrics']['frozen'])
    mmengine.dump(result, summary, indent=2)
    return result


def summarise(runs: List[dict]) -> dict:
    """Mean (and, over several seeds, sample standard deviation) of each metric in order and its drop on
    reversed clips."""
    def stats(values: List[float]) -> dict:
        return dict(mean=statistics.fmean(values),
                    std=statistics.stdev(values) if len(values) > 1 else None, values=values)

    summary = dict(train_min=stats([r['train_s'] / 60 for r in runs]))
    for key, _ in METRICS:
        summary[key] = stats([r['in_order'][key] for r in runs])
        summary[f'{key} drop'] = stats([r['in_order'][key] - r['reversed'][key] for r in runs])
    return summary


def cell(stat: dict) -> str:
    return f'{stat["mean"]:.1f}' + (f' ± {stat["std"]:.1f}' if stat['std'] is not None else '')


def format_table(rows: Dict[str, dict], reference: str) -> str:
    """Markdown table: cost (GFLOPs relative to ``reference``), time, R@1 and the reversal drops."""
    header = ['config', 'video GFLOPs fwd', 'vs ' + reference, 'GFLOPs fwd+bwd', 'encoder fwd ms',
              'train min'] + [title for _, title in METRICS] + [f'{title} drop (reversed)' for _, title in METRICS]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    base = rows[reference]['cost']['forward_gflops']
    for name, row in rows.items():
        cost, summary = row['cost'], row['summary']
        cells = [name, f'{cost["forward_gflops"]:.4f}', f'{cost["forward_gflops"] / base:.3f}',
                 f'{cost["forward_backward_gflops"]:.4f}', f'{cost["forward_ms"]:.1f}', cell(summary['train_min'])]
        cells += [cell(summary[key]) for key, _ in METRICS]
        cells += [cell(summary[f'{key} drop']) for key, _ in METRICS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(rows: Dict[str, dict], path: str, title: str) -> None:
    """R@1 (t2v, re-ranked) in order and reversed per config, against forward GFLOPs; one dot per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = list(rows)
    for i, name in enumerate(names):
        runs = rows[name]['runs']
        gflops = rows[name]['cost']['forward_gflops']
        for key, ax in zip(('t2v/R@1', 'itc/t2v/R@1'), axes):
            ordered = [r['in_order'][key] for r in runs]
            reversed_ = [r['reversed'][key] for r in runs]
            ax.scatter([gflops] * len(runs), ordered, color=f'C{i}', marker='o',
                       label=f'{name}, in order' if key == 't2v/R@1' else None)
            ax.scatter([gflops] * len(runs), reversed_, color=f'C{i}', marker='x',
                       label=f'{name}, reversed' if key == 't2v/R@1' else None)
            ax.plot([gflops, gflops], [statistics.fmean(ordered), statistics.fmean(reversed_)], color=f'C{i}',
                    alpha=0.5)
    for ax, key in zip(axes, ('t2v R@1 (re-ranked), %', 'ITC t2v R@1 (first stage), %')):
        ax.set_xlabel('video encoder GFLOPs per clip (forward)')
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    for config in args.configs:
        if not osp.isfile(config):
            raise MissingFileError(f'--configs: no config file {config}')
    mmengine.mkdir_or_exist(args.work_dir)
    if args.data_dir:
        build_temporal_shapes(args.data_dir)
    frames = mmengine.Config.fromfile(args.configs[0]).get('num_frames', 4)
    costs = encoder_costs(args.configs, frames, args.work_dir)
    rows: Dict[str, dict] = {}
    for config in args.configs:
        runs = [train_and_probe(config, seed, args.work_dir, args.cfg_options, args.train_only_missing)
                for seed in args.seeds]
        rows[name_of(config)] = dict(config=config, cost=costs[name_of(config)], runs=runs, summary=summarise(runs))
    reference = name_of(args.configs[0])
    table = format_table(rows, reference)
    seeds = ', '.join(map(str, args.seeds))
    caption = (f'{len(args.seeds)} seed(s) ({seeds}) per config; R@1 and drops in %, mean ± sample std over '
               f'seeds; drop = in order - reversed (positive: the model uses frame order)')
    print(table + '\n' + caption)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n\n' + caption + '\n')
    plot(rows, osp.join(args.work_dir, 'results.png'), f'token reduction at equal FLOPs ({caption.split(";")[0]})')
    results = dict(configs=args.configs, seeds=args.seeds, cfg_options=args.cfg_options, rows=rows)
    mmengine.dump(results, osp.join(args.work_dir, 'results.json'), indent=2)
    print(f'written: {osp.join(args.work_dir, "results.md")}, results.json, results.png')
    return results


if __name__ == '__main__':
    run_tool(main)
