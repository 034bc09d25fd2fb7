"""Does a video-text model use frame order? Evaluate retrieval (or QA, for a QA config) with each test
clip's frames in order, reversed, shuffled (fixed seed) and frozen (the middle frame repeated), and report
the drop of each.

    python tools/analysis/temporal_probe.py CONFIG CHECKPOINT [--work-dir DIR] [--seed S]
                                            [--conditions reversed shuffled frozen]
                                            [--cfg-options k=v ...] [--out probe.json]

Each condition inserts ``ReorderFrames(mode=...)`` right after ``DecodeVideoFrames`` in the test pipeline
and runs the config's test loop with the Runner that ``tools/test.py`` builds, so the "in order" numbers
are ``tools/test.py``'s.  A model that uses time loses accuracy on reversed/shuffled clips of the demo
data (its captions depend on frame order); a frame-bag model (configs/demo/framebag_demo.py) cannot.
"""
from __future__ import annotations

import argparse
import copy
import time
from typing import Dict, List, Optional, Sequence

import mmengine
from mmengine.config import Config
from mmengine.runner import Runner

from svitt_mm.apis import build_test_config
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import UserError

# condition name -> ReorderFrames mode
CONDITIONS: Dict[str, str] = {'in order': 'none', 'reversed': 'reverse', 'shuffled': 'shuffle',
                              'frozen': 'freeze'}
RETRIEVAL_METRICS = ('t2v/R@1', 't2v/R@5', 'v2t/R@1', 'R_mean', 'itc/t2v/R@1')
REFERENCE = 'in order'


def with_frame_order(pipeline: Sequence[dict], mode: str, seed: int = 0) -> List[dict]:
    """A copy of ``pipeline`` with ``ReorderFrames(mode, seed)`` right after ``DecodeVideoFrames``."""
    steps = [copy.deepcopy(step) for step in pipeline]
    names = [str(step.get('type', '')).split('.')[-1] for step in steps]
    if 'DecodeVideoFrames' not in names:
        raise UserError(f'temporal probe: the test pipeline has no DecodeVideoFrames step to reorder '
                         f'after; its steps are {names}')
    steps.insert(names.index('DecodeVideoFrames') + 1, dict(type='ReorderFrames', mode=mode, seed=seed))
    return steps


def run_probe(cfg: Config, seed: int = 0,
              conditions: Optional[Dict[str, str]] = None) -> Dict[str, Dict[str, float]]:
    """Run ``cfg``'s test loop once per condition.

    Args:
        cfg: a test config (``svitt_mm.apis.build_test_config``, as ``tools/test.py`` uses it: ``load_from`` set).
        seed: seed of the shuffled order.
        conditions: condition name -> ``ReorderFrames`` mode (default :data:`CONDITIONS`).

    Returns:
        condition name -> all metrics of the test loop.
    """
    results = {}
    stamp = time.strftime('%Y%m%d_%H%M%S')
    for name, mode in (conditions or CONDITIONS).items():
        run_cfg = copy.deepcopy(cfg)
        dataset = run_cfg.test_dataloader.dataset
        dataset.pipeline = with_frame_order(dataset.pipeline, mode, seed)
        run_cfg.experiment_name = f'temporal_probe_{mode}_{stamp}'  # one logger/scope per Runner
        results[name] = dict(Runner.from_cfg(run_cfg).test())
    return results


def probe_metrics(results: Dict[str, Dict[str, float]]) -> List[str]:
    """The metrics to report: the retrieval ones present, else QA accuracy (``acc`` and ``acc/<type>``)."""
    reference = results[REFERENCE]
    retrieval = [key for key in RETRIEVAL_METRICS if key in reference]
    return retrieval or sorted(key for key in reference if key == 'acc' or key.startswith('acc/'))


def probe_drops(results: Dict[str, Dict[str, float]],
                metrics: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    """condition -> metric -> ``in order - condition`` (positive: the condition is worse)."""
    reference = results[REFERENCE]
    metrics = probe_metrics(results) if metrics is None else metrics
    return {name: {key: float(reference[key]) - float(values[key]) for key in metrics if key in values}
            for name, values in results.items()}


def format_probe_table(results: Dict[str, Dict[str, float]], title: str = '',
                       metrics: Optional[Sequence[str]] = None) -> str:
    """Fixed-width table: one row per metric, per condition the value and (drop vs in order)."""
    metrics = probe_metrics(results) if metrics is None else metrics
    drops = probe_drops(results, metrics)
    names = list(results)
    lines = [title] if title else []
    lines.append(f'{"metric":<13}' + ''.join(f'{name:>18}' for name in names))
    for key in metrics:
        if key not in results[REFERENCE]:
            continue
        cells = [f'{results[REFERENCE][key]:.2f}'.rjust(18)]
        cells += [f'{results[name][key]:.2f} ({drops[name][key]:+.2f})'.rjust(18) for name in names[1:]]
        lines.append(f'{key:<13}' + ''.join(cells))
    lines.append('(values in %; in parentheses the drop vs in order, positive = worse)')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Retrieval or QA with frames in order, reversed, '
                                                 'shuffled and frozen')
    parser.add_argument('config', help='config file (Python)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs go (default: work_dirs/<config name>)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the shuffled frame order')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries')
    parser.add_argument('--conditions', nargs='+', choices=[name for name in CONDITIONS if name != REFERENCE],
                        default=[name for name in CONDITIONS if name != REFERENCE],
                        help='the conditions to run besides "in order" (default: all)')
    parser.add_argument('--out', help='write the metrics and drops to this JSON file')
    return parser.parse_args(argv)


def main(argv=None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    cfg = build_test_config(args.config, args.checkpoint, args.work_dir, args.cfg_options)
    conditions = {name: mode for name, mode in CONDITIONS.items() if name == REFERENCE or name in args.conditions}
    results = run_probe(cfg, args.seed, conditions)
    print(format_probe_table(results, f'temporal probe of {args.checkpoint} ({args.config})'))
    if args.out:
        mmengine.dump(dict(config=args.config, checkpoint=args.checkpoint, seed=args.seed, modes=conditions,
                           metrics=results, drops=probe_drops(results)), args.out, indent=2)
        print(f'probe results written to {args.out}')
    return results


if __name__ == '__main__':
    run_tool(main)
