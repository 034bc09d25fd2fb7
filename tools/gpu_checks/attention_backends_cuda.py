"""GPU check of the block-sparse backends: conformance of every pattern (a plugin pattern defined here
included) on triton, flex and gather in float32 and bfloat16, then the plugin pattern through Triton timed
against dense SDPA (flash) at 16 frames. Prints tables and writes JSON; exit status 1 if a case fails.

    python tools/gpu_checks/attention_backends_cuda.py --out work_dirs/gpu/attention_backends.json

About 4 minutes on an H200 (Triton compiles one kernel variant per case; flex runs eagerly in the
conformance cases, compiled in the timing). Without CUDA it runs the same checks on CPU at a toy size
(Triton in its interpreter, float32 only), to check the script itself.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Dict, List, Optional

import torch

if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')  # before Triton is imported

import mmengine  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from svitt_mm.models.attention import BlockPattern, BlockSparseAttention, DenseAttention  # noqa: E402
from svitt_mm.registry import ATTENTION_PATTERNS  # noqa: E402
from svitt_mm.testing import CONFORMANCE_CASES, check_block_pattern  # noqa: E402


@ATTENTION_PATTERNS.register_module(force=True)
class PeriodicBlocks(BlockPattern):
    """A plugin pattern: block ``m`` sees ``m`` and ``m +- k * period`` for ``k = 1..span`` (with 56-token blocks
    of 196-token frames, ``period=7`` is the same place two frames away)."""

    def __init__(self, period: int = 7, span: int = 2) -> None:
        self.period = period
        self.span = span

    def block_index(self, num_blocks, training, generator=None, device=None):
        steps = [k * self.period for k in range(1, self.span + 1)]
        offsets = torch.tensor([0] + steps + [-s for s in steps], device=device)
        blocks = torch.arange(num_blocks, device=device)[:, None] + offsets
        return blocks.where((blocks >= 0) & (blocks < num_blocks), -1)


PATTERNS = {'LocalRandomBlocks': dict(type='LocalRandomBlocks', random_blocks=2),
            'StridedBlocks': dict(type='StridedBlocks', stride=4),
            'PeriodicBlocks (plugin)': dict(type='PeriodicBlocks', period=5, span=1)}
BACKENDS = ('triton', 'flex', 'gather')


def conformance(device: str, dtypes: List[str]) -> Dict[str, dict]:
    """``{pattern: {backend: {dtype: {case: status}}}}``; a failing case's status starts with ``FAIL``."""
    results: Dict[str, dict] = {}
    for label, pattern in PATTERNS.items():
        for backend in BACKENDS:
            for dtype in dtypes:
                cases = ['bfloat16'] if dtype == 'bfloat16' else [c for c in CONFORMANCE_CASES if c != 'bfloat16']
                statuses = {}
                for case in cases:
                    try:
                        statuses.update(check_block_pattern(pattern, backend, device, cases=[case],
                                                            backend_options=dict(flex=dict(compile=False))))
                    except Exception as error:  # noqa: BLE001  (record and go on: one table for everything)
                        statuses[case] = f'FAIL {type(error).__name__}: {str(error)[:300]}'
                results.setdefault(label, {}).setdefault(backend, {})[dtype] = statuses
                failed = [case for case, status in statuses.items() if status.startswith('FAIL')]
                print(f'{label:<26}{backend:<8}{dtype:<10}{len(statuses) - len(failed)}/{len(statuses)} ok'
                      + ''.join(f'\n    {case}: {statuses[case]}' for case in failed), flush=True)
    return results


def mean_ms(fn, repeats: int) -> float:
    fn()
    fn()
    return benchmark.Timer('fn()', globals={'fn': fn}).timeit(repeats).mean * 1e3


def timing(device: str, frames: int, batch: int, heads: int, dim: int, tokens_per_frame: int,
           repeats: int) -> List[dict]:
    """The plugin pattern on Triton (and LocalRandomBlocks for reference) against dense SDPA, forward
    (eval, no_grad) and forward+backward (train), in bfloat16 on CUDA (float32 on CPU)."""
    dtype = torch.bfloat16 if device == 'cuda' else torch.float32
    tokens = 1 + tokens_per_frame * frames
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch, heads, tokens, dim, generator=generator).to(device, dtype).requires_grad_()
               for _ in range(3))
    rows = []

    def flash():
        if device != 'cuda':
            return F.scaled_dot_product_attention(q, k, v)
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v)

    plugin = dict(type='PeriodicBlocks', period=7, span=2)  # 5 of the 56 blocks of 16 frames
    ops = {'SDPA (flash), no global probs': None, 'DenseAttention': DenseAttention(),
           'PeriodicBlocks (plugin), triton': BlockSparseAttention(56, pattern=plugin, backend='triton'),
           'LocalRandomBlocks, triton': BlockSparseAttention(56, backend='triton'),
           'PeriodicBlocks (plugin), flex': BlockSparseAttention(56, pattern=plugin, backend='flex'),
           'PeriodicBlocks (plugin), auto': BlockSparseAttention(56, pattern=plugin)}
    for name, op in ops.items():
        for phase in ('forward', 'forward_backward'):
            if op is not None:
                op.train(phase != 'forward')
            call = flash if op is None else (lambda op=op: op(q, k, v, num_global=1)[0])
            if phase == 'forward':
                def step(call=call):
                    with torch.no_grad():
                        call()
            else:
                def step(call=call):
                    call().float().sum().backward()
            try:
                ms = mean_ms(step, repeats)
                ran = 'flash' if op is None else getattr(op, 'last_backend', 'dense')
            except (ValueError, RuntimeError) as error:
                ms, ran = None, f'failed: {str(error)[:200]}'
            rows.append(dict(name=name, phase=phase, ms=ms, ran=ran))
    for row in rows:
        base = next(r for r in rows if r['phase'] == row['phase'] and r['name'].startswith('SDPA'))
        row['speedup_vs_flash'] = base['ms'] / row['ms'] if row['ms'] and base['ms'] else None
    print(f'\n{frames} frames, batch {batch}, {heads} heads x {dim}, {tokens} tokens, {dtype}, {device}')
    print(f'{"name":<36}{"phase":<18}{"ms":>10}{"vs flash":>10}  ran')
    for row in rows:
        ms = '-' if row['ms'] is None else f'{row["ms"]:.3f}'
        ratio = '-' if row['speedup_vs_flash'] is None else f'{row["speedup_vs_flash"]:.2f}x'
        print(f'{row["name"]:<36}{row["phase"]:<18}{ms:>10}{ratio:>10}  {row["ran"]}')
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='JSON file for all results')
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--skip-timing', action='store_true')
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = 'cuda' if cuda else 'cpu'
    start = time.perf_counter()
    info = dict(device=torch.cuda.get_device_name() if cuda else platform.processor() or 'cpu',
                torch=torch.__version__, python=sys.version.split()[0])
    print(info, flush=True)
    results = dict(machine=info, conformance=conformance(device, ['float32', 'bfloat16'] if cuda else ['float32']))
    results['conformance_s'] = time.perf_counter() - start
    if not args.skip_timing:
        shape = dict(frames=args.frames, batch=args.batch, heads=12, dim=64, tokens_per_frame=196) if cuda else \
            dict(frames=2, batch=1, heads=2, dim=16, tokens_per_frame=196)
        results['timing'] = timing(device, repeats=args.repeats if cuda else 2, **shape)
        results['timing_shape'] = shape
    failures = [(p, b, d, c) for p, per_backend in results['conformance'].items()
                for b, per_dtype in per_backend.items() for d, statuses in per_dtype.items()
                for c, status in statuses.items() if status.startswith('FAIL')]
    results['failures'] = [' / '.join(f) for f in failures]
    results['total_s'] = time.perf_counter() - start
    mmengine.dump(results, args.out, indent=2)
    print(f'\n{len(failures)} failing cases; {results["total_s"]:.0f} s; wrote {args.out}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
