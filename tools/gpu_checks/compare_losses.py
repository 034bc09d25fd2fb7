"""Compare training runs' loss curves with a reference run (tools/gpu_checks/strategies.sh): per run the losses
of every step, the final evaluation, and against the reference the largest and mean absolute loss difference
over the first 10 steps and over all steps, and the mean loss of the last 50 steps. Prints a table and writes
JSON; a run without losses (it failed: see its log) ends the tool with an error after the JSON is written.

    python tools/gpu_checks/compare_losses.py OUT_DIR --reference plain --runs fsdp deepspeed --out OUT.json
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import UserError

NON_METRICS = {'iter', 'step', 'epoch', 'data_time', 'time'}


def read_run(work_dir: str) -> Dict[str, object]:
    """Losses by step and the last evaluation's metrics of the newest log in ``work_dir``."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    losses: Dict[int, float] = {}
    metrics: Dict[str, float] = {}
    if paths:
        with open(paths[-1]) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses[int(record['iter'])] = float(record['loss'])
                elif 't2v/R@1' in record:
                    metrics = {k: v for k, v in record.items() if k not in NON_METRICS}
    return dict(losses=[losses[i] for i in sorted(losses)], metrics=metrics)


def difference(run: List[float], reference: List[float], steps: Optional[int] = None) -> Dict[str, float]:
    pairs = list(zip(run, reference))[:steps]
    gaps = [abs(a - b) for a, b in pairs]
    return dict(steps=len(pairs), max_abs=max(gaps), mean_abs=sum(gaps) / len(gaps))


def tail_mean(losses: List[float], count: int = 50) -> float:
    tail = losses[-count:]
    return sum(tail) / len(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='folder with one work dir per run')
    parser.add_argument('--reference', required=True, help='run every other run is compared with')
    parser.add_argument('--runs', nargs='+', required=True)
    parser.add_argument('--bf16-reference', help='a second reference, for the bf16 runs (name ends in bf16 or '
                        'is deepspeed)')
    parser.add_argument('--out', required=True, help='JSON file to write')
    args = parser.parse_args()
    names = [args.reference] + ([args.bf16_reference] if args.bf16_reference else []) + args.runs
    runs = {name: read_run(osp.join(args.out_dir, name)) for name in dict.fromkeys(names)}
    if not runs[args.reference]['losses']:
        raise UserError(f'{osp.join(args.out_dir, args.reference)}: the reference run logged no losses')
    failed = []
    print(f'{"run":12} {"vs":12} {"steps":>5} {"max|d| 10":>10} {"max|d|":>8} {"mean|d|":>8} {"last50":>8} '
          f'{"ref last50":>10}')
    for name in args.runs:
        run = runs[name]
        bf16 = name.endswith('bf16') or name == 'deepspeed'
        reference = args.bf16_reference if bf16 and args.bf16_reference else args.reference
        if not run['losses']:
            run['error'] = f'no losses logged: see {osp.join(args.out_dir, name)}.log'
            print(f'{name:12} {run["error"]}')
            failed.append(name)
            continue
        ref = runs[reference]['losses']
        run['reference'] = reference
        run['first_10'] = difference(run['losses'], ref, 10)
        run['all'] = difference(run['losses'], ref)
        run['last_50_mean'] = tail_mean(run['losses'])
        run['reference_last_50_mean'] = tail_mean(ref)
        print(f'{name:12} {reference:12} {run["all"]["steps"]:5d} {run["first_10"]["max_abs"]:10.2e} '
              f'{run["all"]["max_abs"]:8.4f} {run["all"]["mean_abs"]:8.4f} {run["last_50_mean"]:8.4f} '
              f'{run["reference_last_50_mean"]:10.4f}')
    with open(args.out, 'w') as f:
        json.dump(runs, f, indent=1)
    if failed:
        raise UserError(f'runs without losses: {", ".join(failed)} (their logs in {args.out_dir} say why)')


if __name__ == '__main__':
    run_tool(main)
