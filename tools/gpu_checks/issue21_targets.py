"""Issue 21's GPU targets, marked met or not met from the JSON of tools/benchmark.py runs
(tools/benchmark_gpu.sh makes them):

* Triton operator forward at 16 frames, batch 8, bf16: >= 5x dense SDPA without bias (flash);
* the same layer forward+backward: >= 1.5x flash;
* the whole training step (--train-step), SViTT 16 frames vs the strong dense baseline, bf16: >= 3x
  clips/s, and SViTT's MFU >= 35 %;
* torch.compile of the SViTT encoder: measured (no target; the speed-up over eager is reported).

    python tools/gpu_checks/issue21_targets.py --op OP.json --step STEP.json \
        [--compiled ENC_COMPILED.json --eager ENC_EAGER.json] --out targets.json

Prints one line per target and writes them as JSON; a missing input leaves its rows 'not measured'.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
from typing import Dict, List, Optional


def load(path: Optional[str]) -> Optional[dict]:
    if not path or not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def find(results: Optional[dict], phase: str, name_part: str, frames: int = 16) -> Optional[dict]:
    """The first record of ``phase`` at ``frames`` whose name contains ``name_part``."""
    for record in (results or {}).get('results', []):
        if record['phase'] == phase and record['frames'] == frames and name_part in record['name']:
            return record
    return None


def row(target: str, value: Optional[float], goal: Optional[float], unit: str, source: str) -> Dict[str, object]:
    status = 'not measured' if value is None else (
        'measured' if goal is None else ('met' if value >= goal else 'not met'))
    return {'target': target, 'value': value, 'goal': goal, 'unit': unit, 'status': status, 'source': source}


def targets(op: Optional[dict], step: Optional[dict], compiled: Optional[dict],
            eager: Optional[dict]) -> List[Dict[str, object]]:
    rows = []
    for phase, goal, label in (('forward', 5.0, 'Triton forward, 16 f, batch 8, bf16, vs flash'),
                               ('forward_backward', 1.5, 'Triton layer fwd+bwd, 16 f, batch 8, vs flash')):
        record = find(op, phase, 'Triton')
        rows.append(row(label, record and record['speedup'], goal, 'x', 'op'))
    svitt = find(step, 'train_step', 'svitt')
    rows.append(row('train step SViTT 16 f vs strong dense, bf16', svitt and svitt['speedup'], 3.0, 'x', 'step'))
    rows.append(row('train step SViTT MFU', svitt and svitt.get('mfu'), 0.35, 'fraction', 'step'))
    for name in ('svitt_16f', 'svitt_16f_triton'):
        fast, slow = find(compiled, 'forward', name), find(eager, 'forward', name)
        value = None if not (fast and slow) or fast['name'] != name or slow['name'] != name else (
            slow['seconds'] / fast['seconds'])
        rows.append(row(f'torch.compile of {name} encoder (eager time / compiled time)', value, None, 'x',
                        'encoder'))
    return rows


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    for flag in ('--op', '--step', '--compiled', '--eager'):
        parser.add_argument(flag, default=None, help='JSON of a tools/benchmark.py run')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    rows = targets(load(args.op), load(args.step), load(args.compiled), load(args.eager))
    for r in rows:
        value = '-' if r['value'] is None else f'{r["value"]:.3f}'
        goal = '' if r['goal'] is None else f' (goal >= {r["goal"]})'
        print(f'{r["status"]:>12}  {r["target"]}: {value} {r["unit"]}{goal}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({'targets': rows}, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
