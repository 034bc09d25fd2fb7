"""Cost of video encoders (or of one attention layer) against the number of frames: FLOPs, mean time,
clips/s and peak memory, with ratios against the first (baseline) entry measured in the same run.

    python tools/benchmark.py CONFIG [CONFIG ...] --frames 4 8 16 [--batch-size B] [--device cpu|cuda]
                              [--backward] [--compile] [--repeats N] [--warmup N] [--threads N]
                              [--out results.json] [--plot cost.png]
    python tools/benchmark.py --op --frames 4 8 16 [--backward] [--ops OP[:key=value,...] ...] [--dtype bfloat16]
                              [--pattern NAME[:key=value,...] ...] [--backend auto|triton|cpu_kernel|flex|gather ...]
    python tools/benchmark.py --op --bias --dense FusedBiasDenseAttention DenseAttention ...
    python tools/benchmark.py --train-step CONFIG [CONFIG ...] --frames 16 --batch-size B [--amp] [--with-cp]
                              [--compile] [--peak-tflops 989] [--repeats N] [--warmup N] [--device cuda]
    python tools/benchmark.py --data CONFIG [--batches 20] [--batch-size B] [--num-workers W]

Config mode builds each config's video encoder (``model.vision_encoder``) with random weights
(``pretrained=None``) and ``max_frames=T``; no data or checkpoints are needed. Put the dense baseline
first. ``--op`` mode compares ``DenseAttention`` with the ``--ops`` sparse operators (default
``BlockSparseAttention``; e.g. ``CpuBlockSparseAttention`` on CPU, ``FlexBlockSparseAttention`` or
``TritonBlockSparseAttention`` for GPUs; ``NAME:key=value,...`` adds constructor arguments, e.g.
``TritonBlockSparseAttention:block_n=32``) on ``q, k, v`` of shape
``[B, heads, 1 + tokens_per_frame * T, head_dim]`` (no position bias). ``--pattern`` gives the
``ATTENTION_PATTERNS`` entries the block-sparse operators use (default: ``LocalRandomBlocks`` with
``--local-blocks``/``--random-blocks``), and ``--backend`` the backends ``BlockSparseAttention`` runs on
(default ``auto``): one row per operator, pattern and backend, whose note names the backend that ran
(``BlockSparseAttention.last_backend``). A named backend that cannot run a case is reported and skipped.
``--dtype`` casts the ``--op`` inputs, and runs config mode under ``torch.autocast`` (mixed precision).
Forward runs in eval mode (deterministic sparse patterns) under ``no_grad``; ``--backward`` adds forward+backward in train mode.
The first call of each case is timed on its own (``first_call_s``: lazy initialisation and any
``torch.compile`` compilation), then ``--warmup`` more untimed calls; then ``torch.utils.benchmark.Timer``
times ``--repeats`` calls in one block (after its own two warm-up calls, with the accelerator synchronised
at both ends) and the mean per call is reported.
``--compile`` times ``torch.compile`` of each case's whole forward (the encoder, or the operator).
Peak memory: CUDA's ``max_memory_allocated``; on CPU the growth of the process' peak resident set
during one extra call (:func:`svitt_mm.apis.cost.peak_rss_mb`). Like ``tools/train.py`` and
``tools/test.py``, the tool keeps freed CPU memory for reuse (:mod:`svitt_mm.apis.cpu_allocator`);
``--system-malloc`` measures with glibc's defaults.

``--op --bias`` adds BEiT's 3-D relative position bias (one learnable table per case, gradients included)
to every operator; ``--dense`` names the dense rows, the first being the ratio baseline (e.g. the strong
baseline ``FusedBiasDenseAttention`` first, the old ``DenseAttention`` second).

``--train-step`` builds each config's whole model (``model``; random weights; the text encoder's architecture
from its ``pretrained`` folder or package when it is there, else BERT-base's, said in the note) and times
full optimizer steps (the config's ``optim_wrapper`` optimizer and parameter groups) on a synthetic batch:
``--batch-size`` clips of ``--frames`` frames and one random caption each of ``max_text_len`` tokens; the
losses are the model's own (ITC, ITM with hard negatives, MLM for pretraining models). Steps are timed with
``time.perf_counter`` (the accelerator synchronised), ``--warmup`` untimed steps after the first one, then the
mean of ``--repeats``. Reported: clips/s, peak memory (CUDA: ``max_memory_allocated`` over the timed steps;
CPU: peak-RSS growth during one more step, which is also the profiled step), model FLOPs per clip (forward +
backward as ``count_flops`` counts them, with activation checkpointing off, so no recomputation), MFU against
``--peak-tflops`` (dense bf16 tensor-core peaks: H100 SXM 989 TFLOP/s, H200 989, A100 312; use the fp32
peak without ``--amp``) and the time of one step split by ``torch.profiler`` ranges: video encoder
(``encode_video``), text encoder (``encode_text``), fusion (``fuse``), heads (contrastive/matching losses,
negative sampling, LM head), backward, optimizer, other. ``--amp``: bfloat16 autocast; ``--with-cp``:
activation checkpointing in both encoders; ``--compile``: ``torch.compile`` of the video encoder,
``encode_text`` and ``fuse``.

``--data`` mode iterates the config's ``train_dataloader`` (its workers, pinning and persistence) for
``--batches`` batches and reports clips/s and the time the loop waited for each batch.
"""
from __future__ import annotations

import argparse
import ast
import copy
import os
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import mmengine
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings
from torch import Tensor, nn
from torch.utils import benchmark

from svitt_mm.apis import count_flops, peak_rss_mb, register_all_modules, retain_freed_memory
from svitt_mm.apis.cli import run_tool
from svitt_mm.models.backbones.relative_position_bias import RelativePositionBias3D, RelativePositionIndex
from svitt_mm.utils.errors import UserError
from svitt_mm.registry import ATTENTION_OPS, ATTENTION_PATTERNS, BACKBONES

PHASES = ('forward', 'forward_backward')
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='*', help='config files; the first one is the baseline')
    parser.add_argument('--op', action='store_true',
                        help='benchmark one attention layer (BlockSparseAttention vs DenseAttention)')
    parser.add_argument('--train-step', action='store_true',
                        help='time one full optimizer step of each config\'s whole model (video and text '
                             'encoders, fusion, ITC + ITM with hard negatives, MLM for pretraining models) on '
                             'synthetic batches; the first config is the baseline')
    parser.add_argument('--amp', action='store_true', help='--train-step: bfloat16 autocast (mixed precision)')
    parser.add_argument('--with-cp', action='store_true',
                        help='--train-step: activation checkpointing in the video and text encoders')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='--train-step: the device\'s peak TFLOP/s for MFU = model FLOPs / time / peak; '
                             'dense bf16 tensor-core peaks: H100 SXM 989, H200 989, A100 312')
    parser.add_argument('--data', metavar='CONFIG', default=None,
                        help="dataloader throughput of CONFIG's train_dataloader")
    parser.add_argument('--batches', type=int, default=20, help='--data: batches to iterate')
    parser.add_argument('--num-workers', type=int, default=None,
                        help="--data: override the config's num_workers")
    parser.add_argument('--frames', type=int, nargs='+', default=[4, 8, 16])
    parser.add_argument('--batch-size', type=int, default=None,
                        help="clips per batch (default 1; --data: the config's batch size)")
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--dtype', default='float32', choices=sorted(DTYPES),
                        help='--op: dtype of q, k, v; configs: autocast dtype (float32: no autocast)')
    parser.add_argument('--backward', action='store_true', help='also time forward+backward (train mode)')
    parser.add_argument('--compile', action='store_true',
                        help='time torch.compile(forward) (one graph per case and phase; the compilation '
                             'is in first_call_s)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='calls timed by torch.utils.benchmark.Timer; the mean per call is reported')
    parser.add_argument('--warmup', type=int, default=0,
                        help="untimed calls before the Timer's own two warm-up calls")
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--system-malloc', action='store_true',
                        help="keep glibc's default allocation thresholds (by default freed memory is kept for "
                             'reuse, as tools/train.py and tools/test.py do; svitt_mm.apis.cpu_allocator)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write all numbers and machine info as JSON')
    parser.add_argument('--plot', default=None, help='draw time and GFLOPs against frames to a PNG')
    op = parser.add_argument_group('--op mode (defaults: SViTT / BEiT-base shapes)')
    op.add_argument('--ops', nargs='+', default=['BlockSparseAttention'], metavar='OP',
                    help='ATTENTION_OPS entries compared with DenseAttention (built with the block settings '
                         'below), each optionally NAME:key=value,... with more constructor arguments')
    op.add_argument('--dense', nargs='+', default=['DenseAttention'], metavar='OP',
                    help='dense ATTENTION_OPS entries (rows without block settings), each optionally '
                         'NAME:key=value,...; the first one is the baseline of the ratios, e.g. '
                         'FusedBiasDenseAttention DenseAttention FusedBiasDenseAttention:backend=\'flex\'')
    op.add_argument('--bias', action='store_true',
                    help="add BEiT's 3-D relative position bias (one learnable table, gradients included) to "
                         'every operator, as in the video encoder; --tokens-per-frame must be a square')
    op.add_argument('--heads', type=int, default=12)
    op.add_argument('--head-dim', type=int, default=64)
    op.add_argument('--tokens-per-frame', type=int, default=196)
    op.add_argument('--block-size', type=int, default=56)
    op.add_argument('--local-blocks', type=int, default=1)
    op.add_argument('--random-blocks', type=int, default=3)
    op.add_argument('--pattern', nargs='+', default=[], metavar='NAME[:key=value,...]',
                    help='ATTENTION_PATTERNS entries for the block-sparse operators (default: LocalRandomBlocks '
                         'with --local-blocks/--random-blocks), e.g. StridedBlocks:stride=4')
    op.add_argument('--backend', nargs='+', default=['auto'], metavar='NAME',
                    help="backends of BlockSparseAttention, one row each: auto (the dispatcher's choice), "
                         'triton, cpu_kernel, flex, gather')
    args = parser.parse_args(argv)
    try:
        args.op_specs = [parse_op_spec(text) for text in args.ops]
        args.pattern_specs = [parse_op_spec(text, '--pattern') for text in args.pattern]
        args.dense_specs = [parse_op_spec(text, '--dense') for text in args.dense]
    except ValueError as error:
        parser.error(str(error))
    if sum((args.op, bool(args.configs), args.data is not None)) != 1:
        parser.error('give exactly one of: CONFIG files, --op, --data CONFIG')
    if args.train_step and not args.configs:
        parser.error('--train-step needs CONFIG files')
    if (args.amp or args.with_cp or args.peak_tflops is not None) and not args.train_step:
        parser.error('--amp, --with-cp and --peak-tflops go with --train-step')
    if args.peak_tflops is not None and args.peak_tflops <= 0:
        parser.error(f'--peak-tflops must be > 0, got {args.peak_tflops}')
    args.batch_size_given = args.batch_size is not None
    if args.batch_size is None:
        args.batch_size = 1
    if args.batches < 1:
        parser.error(f'--batches must be >= 1, got {args.batches}')
    for key in ('batch_size', 'repeats', 'heads', 'head_dim', 'tokens_per_frame', 'block_size'):
        if getattr(args, key) < 1:
            parser.error(f'--{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    if args.bias and round(args.tokens_per_frame ** 0.5) ** 2 != args.tokens_per_frame:
        parser.error(f'--bias needs a square --tokens-per-frame (a frame grid), got {args.tokens_per_frame}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    if any(t < 1 for t in args.frames):
        parser.error(f'--frames must all be >= 1, got {args.frames}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda was asked for, but torch sees no CUDA device')
    return args


def parse_op_spec(text: str, flag: str = '--ops') -> Tuple[str, Dict[str, object]]:
    """``'NAME'`` or ``'NAME:key=value,key=value'`` -> ``(NAME, {key: value})``; values are Python
    literals (``block_n=32``, ``compile=False``)."""
    name, _, options = text.partition(':')
    kwargs: Dict[str, object] = {}
    for item in filter(None, options.split(',')):
        key, sep, value = item.partition('=')
        if not sep or not key.strip().isidentifier():
            raise ValueError(f'{flag} {text!r}: expected NAME:key=value,..., got {item!r}')
        try:
            kwargs[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f'{flag} {text!r}: {key.strip()}={value.strip()!r} is not a Python '
                             'literal') from None
    return name, kwargs


def machine_info(device: torch.device, malloc: str) -> Dict[str, object]:
    """Versions, threads and the device's name, stored with the numbers."""
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        if osp.isfile('/proc/cpuinfo'):
            with open('/proc/cpuinfo') as f:
                models = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
            name = models[0] if models else name
    return {
        'torch': torch.__version__,
        'python': platform.python_version(),
        'platform': platform.platform(),
        'device': str(device),
        'device_name': name,
        'threads': torch.get_num_threads(),
        'malloc': malloc,
        'cpu_count': os.cpu_count(),
        'peak_memory': ('torch.cuda.max_memory_allocated during the timed calls (MiB)'
                        if device.type == 'cuda' else
                        'growth of the process peak RSS (VmHWM reset via /proc/self/clear_refs) during one '
                        'extra call (MiB)'),
    }


def encoder_config(path: str, frames: int) -> dict:
    """``model.vision_encoder`` of the config at ``path`` with random weights and ``max_frames=frames``."""
    if not osp.isfile(path):
        raise SystemExit(f'benchmark: config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    encoder = cfg.get('model', {}).get('vision_encoder')
    if encoder is None:
        raise SystemExit(f'benchmark: {path} has no model.vision_encoder to benchmark')
    encoder = copy.deepcopy(encoder.to_dict() if hasattr(encoder, 'to_dict') else dict(encoder))
    encoder.update(pretrained=None, max_frames=frames)
    return encoder


def first_call_seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn()`` (lazy initialisation, compilation), the accelerator synchronised."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure(module: nn.Module, forward: Callable[[], object], loss: Callable[[object], Tensor],
            grad_tensors: List[Tensor], phase: str, args: argparse.Namespace,
            device: torch.device) -> Dict[str, object]:
    """FLOPs, mean seconds per call and peak memory of one ``phase`` of ``forward``.

    ``forward`` runs in eval mode under ``no_grad``; ``forward_backward`` runs ``loss(forward())``
    backward in train mode, clearing the gradients of ``grad_tensors`` first. With ``--compile`` the timed
    calls run ``torch.compile(forward)``; FLOPs are always counted on the eager ``forward`` (torch's
    counter does not see inside compiled kernels).
    """
    def make_step(fn: Callable[[], object]) -> Callable[[], None]:
        if phase == 'forward':
            def step() -> None:
                with torch.no_grad():
                    fn()
        else:
            def step() -> None:
                for tensor in grad_tensors:
                    tensor.grad = None
                loss(fn()).backward()
        return step

    module.train(phase != 'forward')
    timed = make_step(torch.compile(forward, dynamic=False) if args.compile else forward)
    first_call = first_call_seconds(timed, device)
    flops = count_flops(make_step(forward))
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        timed()
    seconds = benchmark.Timer('timed()', globals={'timed': timed},
                              num_threads=torch.get_num_threads()).timeit(args.repeats).mean
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = peak_rss_mb(timed)
    return {'phase': phase, 'flops': flops, 'gflops': flops / 1e9, 'seconds': seconds,
            'ms': seconds * 1e3, 'first_call_s': first_call, 'clips_per_s': args.batch_size / seconds,
            'peak_memory_mb': peak}


def autocast_call(module: nn.Module, inputs: Tensor, device: torch.device, dtype: str):
    """``module(inputs)``, under ``torch.autocast`` unless ``dtype`` is float32."""
    with torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != 'float32'):
        return module(inputs)


def encoder_cases(args: argparse.Namespace, device: torch.device):
    """Yield ``(name, frames, tokens, note, module, forward, loss, grad_tensors)`` per config and T."""
    for frames in args.frames:
        for path in args.configs:
            cfg = encoder_config(path, frames)
            torch.manual_seed(args.seed)
            encoder = BACKBONES.build(cfg).to(device)
            size, channels = encoder.img_size, encoder.in_channels
            clip = torch.randn(args.batch_size, frames, channels, size, size,
                               generator=torch.Generator().manual_seed(args.seed)).to(device)
            tokens = 1 + frames * encoder.frame_grid[0] * encoder.frame_grid[1]
            attention = cfg.get('attention') or dict(type='DenseAttention')
            note = attention['type'] if isinstance(attention, dict) else 'per-layer attention'
            if cfg.get('pruner'):
                note += f' + {cfg["pruner"]["type"]}'
            yield (osp.splitext(osp.basename(path))[0], frames, tokens, note, encoder,
                   lambda encoder=encoder, clip=clip: autocast_call(encoder, clip, device, args.dtype),
                   lambda out: out.tokens.float().sum() + out.pooled.float().sum(), list(encoder.parameters()))


def op_configs(args: argparse.Namespace) -> List[Tuple[str, dict]]:
    """``(label, ATTENTION_OPS config)`` per row: dense first, then each ``--ops`` entry with each
    ``--pattern`` (``BlockSparseAttention`` also with each ``--backend``)."""
    patterns = [(f' {text}', dict(pattern=dict(type=name, **kwargs)))
                for text, (name, kwargs) in zip(args.pattern, args.pattern_specs)]
    patterns = patterns or [('', dict(local_blocks=args.local_blocks, random_blocks=args.random_blocks))]
    configs = [(text, dict(type=name, **kwargs)) for text, (name, kwargs) in zip(args.dense, args.dense_specs)]
    for text, (name, kwargs) in zip(args.ops, args.op_specs):
        backends = args.backend if name == 'BlockSparseAttention' else ['auto']
        for pattern_text, pattern in patterns:
            for backend in backends:
                label = text + pattern_text + ('' if backends == ['auto'] else f' {backend}')
                extra = {} if backend == 'auto' else dict(backend=backend)
                cfg = dict(type=name, block_size=args.block_size, **pattern, **extra)
                configs.append((label, dict(cfg, **kwargs)))
    return configs


def op_cases(args: argparse.Namespace, device: torch.device):
    """Yield ``(name, frames, tokens, note, module, forward, loss, grad_tensors)`` per :func:`op_configs` row
    and T, dense first."""
    configs = op_configs(args)
    for frames in args.frames:
        tokens = 1 + args.tokens_per_frame * frames
        generator = torch.Generator().manual_seed(args.seed)
        q, k, v = (torch.randn(args.batch_size, args.heads, tokens, args.head_dim, generator=generator)
                   .to(device, DTYPES[args.dtype]).requires_grad_() for _ in range(3))
        bias, table = None, []
        if args.bias:
            grid = (round(args.tokens_per_frame ** 0.5),) * 2
            position_bias = RelativePositionBias3D(args.heads, frames, grid).to(device)
            with torch.no_grad():
                position_bias.table.normal_(generator=generator.manual_seed(args.seed))
            index = RelativePositionIndex(torch.arange(tokens - 1, device=device)[None], grid, frames)
            bias, table = (position_bias, index), [position_bias.table]
        for label, cfg in configs:
            op = ATTENTION_OPS.build(copy.deepcopy(cfg))
            note = 'dense'
            if hasattr(op, 'eval_layout'):
                layout = op.eval_layout(tokens - 1)
                note = 'dense fallback' if layout.is_dense else (
                    f'{layout.num_blocks} blocks of {layout.block_size}')
            if bias is not None:
                note += ', relative position bias'
            yield (label, frames, tokens, note, op,
                   lambda op=op, q=q, k=k, v=v, bias=bias: op(
                       q, k, v, num_global=1, bias=None if bias is None else bias[0].bind(bias[1], q.dtype)),
                   lambda out: out[0].float().sum(), [q, k, v, *table])


def add_ratios(records: List[Dict[str, object]]) -> None:
    """Ratios of each record against the first name measured at the same frames and phase."""
    baselines: Dict[tuple, Dict[str, object]] = {}
    for record in records:
        base = baselines.setdefault((record['frames'], record['phase']), record)
        record['baseline'] = base['name']
        record['time_ratio'] = record['seconds'] / base['seconds']
        record['flop_ratio'] = record['flops'] / base['flops'] if base['flops'] else None
        record['speedup'] = base['seconds'] / record['seconds']


def format_table(records: List[Dict[str, object]], baseline: str) -> str:
    """One row per (frames, phase, name); ratios are against ``baseline`` at the same frames and phase."""
    width = max(22, *(len(r['name']) + 2 for r in records))
    header = (f'{"T":>3} {"phase":<18}{"name":<{width}}{"tokens":>7}{"GFLOPs":>10}{"ms":>10}{"clips/s":>9}'
              f'{"peak MB":>9}{"time/base":>10}{"FLOPs/base":>11}{"speed-up":>9}  note')
    lines = [header, '-' * len(header)]
    for r in sorted(records, key=lambda r: (r['frames'], PHASES.index(r['phase']))):
        peak = '-' if r['peak_memory_mb'] is None else f'{r["peak_memory_mb"]:.0f}'
        flop_ratio = '-' if r['flop_ratio'] is None else f'{r["flop_ratio"]:.3f}'
        lines.append(
            f'{r["frames"]:>3} {r["phase"]:<18}{r["name"]:<{width}}{r["tokens"]:>7}{r["gflops"]:>10.3f}'
            f'{r["ms"]:>10.2f}{r["clips_per_s"]:>9.2f}{peak:>9}{r["time_ratio"]:>10.3f}{flop_ratio:>11}'
            f'{r["speedup"]:>9.2f}  {r["note"]}' + (f'; ran {r["backend"]}' if 'backend' in r else ''))
    lines.append(f'ratios against {baseline} at the same T and phase, measured in this run; '
                 f'speed-up = baseline time / time; ms = mean per call; peak MB: CUDA allocator peak, '
                 f'CPU peak-RSS growth.')
    return '\n'.join(lines)


def data_throughput(args: argparse.Namespace) -> Dict[str, object]:
    """Iterate the ``train_dataloader`` of ``args.data`` for ``args.batches`` batches.

    Returns the settings used and, per batch, the seconds the loop waited for it (decoding, augmentation
    and collation not hidden by the workers); the first batch (worker start-up) is reported apart.
    """
    from mmengine.runner import Runner

    from svitt_mm.apis import check_required_inputs

    if not osp.isfile(args.data):
        raise SystemExit(f'benchmark: config file not found: {args.data}')
    cfg = Config.fromfile(args.data)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    check_required_inputs(cfg)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    if args.num_workers is not None:
        loader_cfg['num_workers'] = args.num_workers
        if args.num_workers == 0:
            loader_cfg['persistent_workers'] = False
    if args.batch_size_given:
        loader_cfg['batch_size'] = args.batch_size
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    waits = []
    iterator = iter(loader)
    for _ in range(args.batches + 1):
        start = time.perf_counter()
        if next(iterator, None) is None:
            break
        waits.append(time.perf_counter() - start)
    if len(waits) < 2:
        raise SystemExit(f'benchmark: {args.data} train_dataloader gave fewer than 2 batches')
    steady = waits[1:]
    steady_clips = len(steady) * loader_cfg['batch_size']  # train loaders drop the last partial batch
    return {'config': args.data, 'batch_size': loader_cfg['batch_size'],
            'num_workers': loader_cfg.get('num_workers', 0),
            'pin_memory': loader_cfg.get('pin_memory', False),
            'persistent_workers': loader_cfg.get('persistent_workers', False),
            'batches': len(steady), 'first_batch_s': waits[0],
            'median_batch_wait_s': statistics.median(steady), 'max_batch_wait_s': max(steady),
            'clips_per_s': steady_clips / sum(steady) if sum(steady) else float('inf')}


# ---------------------------------------------------------------------------------------------- --train-step
STEP_PARTS = ('video encoder', 'text encoder', 'fusion', 'heads', 'backward', 'optimizer')


def train_model_config(path: str, frames: int) -> Tuple[dict, Config, List[str]]:
    """``model`` of the config at ``path`` for a synthetic training step: random video weights,
    ``max_frames=frames``, no checkpoints; the text encoder keeps its ``pretrained`` architecture when the
    folder or package is there (weights are not loaded: time does not depend on them), else BERT-base's
    (``BertFusionEncoder``'s defaults), said in the returned notes."""
    from svitt_mm.models.text import read_bert_config

    if not osp.isfile(path):
        raise UserError(f'benchmark: config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    model = copy.deepcopy(cfg.get('model', {}).to_dict() if hasattr(cfg.get('model'), 'to_dict')
                          else dict(cfg.get('model', {})))
    if 'vision_encoder' not in model or 'text_encoder' not in model:
        raise UserError(f'benchmark: {path}: --train-step needs model.vision_encoder and model.text_encoder')
    notes = []
    model['vision_encoder'].update(pretrained=None, max_frames=frames)
    text = model['text_encoder']
    if text.get('pretrained') is not None:
        try:
            text.update(read_bert_config(text['pretrained']))
            notes.append(f'text architecture from {text["pretrained"]} (random weights)')
        except OSError:
            notes.append(f'text: {text["pretrained"]} not found, BERT-base architecture (random weights)')
        text['pretrained'] = None
    if isinstance(model.get('lm_head'), dict):
        model['lm_head']['pretrained'] = None
    return model, cfg, notes


def synthetic_batch(model: nn.Module, args: argparse.Namespace, frames: int, text_length: int,
                    device: torch.device) -> Tuple[Tensor, Dict[str, Tensor]]:
    """A preprocessed batch as ``VideoTextDataPreprocessor`` makes it: ``[B, 1, T, 3, S, S]`` clips and one
    random caption of ``text_length`` tokens per clip."""
    encoder, text = model.vision_encoder, model.text_encoder
    generator = torch.Generator().manual_seed(args.seed)
    batch = args.batch_size
    video = torch.randn(batch, 1, frames, encoder.in_channels, encoder.img_size, encoder.img_size,
                        generator=generator)
    vocab = text.embeddings.word.num_embeddings
    ids = torch.randint(1000 if vocab > 2000 else 5, vocab, (batch, text_length), generator=generator)
    samples = dict(text_ids=ids, text_mask=torch.ones_like(ids), text_owner=torch.arange(batch),
                   video_ids=torch.arange(batch), sample_idx=torch.arange(batch))
    return video.to(device), {key: value.to(device) for key, value in samples.items()}


def label_parts(model: nn.Module) -> None:
    """Wrap the model's parts in ``torch.profiler.record_function`` ranges named by :data:`STEP_PARTS`
    (instance attributes over the methods, so that they also hold around compiled parts; the video
    encoder's range is ``encode_video``: the encoder, its output norm and the video embedding)."""
    def labelled(label: str, fn: Callable) -> Callable:
        def call(*args, **kwargs):
            with torch.profiler.record_function(label):
                return fn(*args, **kwargs)
        return call

    model.encode_video = labelled('video encoder', model.encode_video)
    model.text_encoder.encode_text = labelled('text encoder', model.text_encoder.encode_text)
    model.text_encoder.fuse = labelled('fusion', model.text_encoder.fuse)
    model.contrastive_head.loss = labelled('heads', model.contrastive_head.loss)
    model.matching_head.loss = labelled('heads', model.matching_head.loss)
    model.matching_head.sample_negatives = labelled('heads', model.matching_head.sample_negatives)
    if hasattr(model, 'lm_head'):
        model.lm_head.forward = labelled('heads', model.lm_head.forward)


def set_checkpointing(model: nn.Module, enabled: bool) -> None:
    """Switch activation checkpointing (``with_cp``) of every module that has it."""
    for module in model.modules():
        if hasattr(module, 'with_cp'):
            module.with_cp = enabled


def profile_split(step: Callable[[], None], device: torch.device) -> Dict[str, float]:
    """Milliseconds of each :data:`STEP_PARTS` range in one ``step()`` under ``torch.profiler`` (host time
    of the range on CPU; on CUDA the device time attributed to it where the profiler has it), plus
    ``other`` (the rest of the step) and ``total``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    total = (time.perf_counter() - start) * 1e3
    split = {part: 0.0 for part in STEP_PARTS}
    for event in prof.key_averages():
        if event.key in split:
            device_ms = getattr(event, 'device_time_total', 0) / 1e3
            split[event.key] += device_ms if device.type == 'cuda' and device_ms else event.cpu_time_total / 1e3
    split['other'] = max(0.0, total - sum(split.values()))
    split['total'] = total
    return split


def train_step_case(path: str, frames: int, args: argparse.Namespace, device: torch.device) -> Dict[str, object]:
    """Build the model of ``path`` and measure one optimizer step on a synthetic batch (see the docstring)."""
    from mmengine.optim import build_optim_wrapper

    from svitt_mm.registry import MODELS

    model_cfg, cfg, notes = train_model_config(path, frames)
    torch.manual_seed(args.seed)
    model = MODELS.build(model_cfg).to(device).train()
    if not hasattr(model, 'retrieval_losses'):
        raise UserError(f'benchmark: {path}: --train-step runs retrieval and pretraining models '
                        f'(VideoTextRetriever, VideoTextPretrainer), not {type(model).__name__}')
    optim_cfg = copy.deepcopy(cfg.get('optim_wrapper') or dict(optimizer=dict(type='AdamW', lr=1e-4)))
    optim_cfg['type'] = 'OptimWrapper'  # no loss checks or accumulation: the step itself is measured
    optim_cfg.pop('max_skipped_steps', None)
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    inputs, samples = synthetic_batch(model, args, frames, cfg.get('max_text_len', 32), device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)

    loss_names: List[str] = []

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            losses = model.loss(inputs, samples)
        loss_names[:] = sorted(losses)
        loss = sum(losses.values())
        with torch.profiler.record_function('backward'):
            loss.backward()
        with torch.profiler.record_function('optimizer'):
            optim_wrapper.step()
            optim_wrapper.zero_grad()

    set_checkpointing(model, False)  # model FLOPs: without the recomputation of checkpointing
    flops = count_flops(step)
    set_checkpointing(model, args.with_cp)
    if args.compile:
        model.vision_encoder.compile(dynamic=False)
        model.text_encoder.encode_text = torch.compile(model.text_encoder.encode_text, dynamic=False)
        model.text_encoder.fuse = torch.compile(model.text_encoder.fuse, dynamic=False)
        notes.append('compiled: vision encoder, encode_text, fuse')
    label_parts(model)
    first_call = first_call_seconds(step, device)
    for _ in range(args.warmup):
        step()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    start = time.perf_counter()
    for _ in range(args.repeats):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.repeats
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        split = profile_split(step, device)
    else:
        split = {}
        peak = peak_rss_mb(lambda: split.update(profile_split(step, device)))
    attention = model_cfg['vision_encoder'].get('attention') or dict(type='DenseAttention')
    note = attention['type'] if isinstance(attention, dict) else 'per-layer attention'
    if model_cfg['vision_encoder'].get('pruner'):
        note += f' + {model_cfg["vision_encoder"]["pruner"]["type"]}'
    record = {'name': osp.splitext(osp.basename(path))[0], 'model': type(model).__name__,
              'frames': frames, 'batch_size': args.batch_size, 'phase': 'train_step',
              'tokens': 1 + frames * model.vision_encoder.frame_grid[0] * model.vision_encoder.frame_grid[1],
              'flops': flops, 'gflops': flops / 1e9, 'gflops_per_clip': flops / 1e9 / args.batch_size,
              'seconds': seconds, 'ms': seconds * 1e3, 'first_call_s': first_call,
              'clips_per_s': args.batch_size / seconds, 'peak_memory_mb': peak,
              'params_m': sum(p.numel() for p in model.parameters()) / 1e6,
              'split_ms': split, 'losses': loss_names,
              'note': '; '.join([note] + notes)}
    if args.peak_tflops:
        record['tflops_per_s'] = flops / seconds / 1e12
        record['mfu'] = flops / seconds / (args.peak_tflops * 1e12)
    return record


def format_train_table(records: List[Dict[str, object]], baseline: str) -> str:
    """One row per (frames, config) with the step's numbers, then the profiler split in ms per step."""
    width = max(16, *(len(r['name']) + 2 for r in records))
    header = (f'{"T":>3} {"name":<{width}}{"GFLOP/clip":>11}{"ms/step":>10}{"clips/s":>9}{"peak MB":>9}'
              f'{"MFU %":>7}{"speed-up":>9}  ' + ' '.join(f'{p:>9}' for p in STEP_PARTS + ('other',)))
    lines = [header, '-' * len(header)]
    for r in sorted(records, key=lambda r: r['frames']):
        peak = '-' if r['peak_memory_mb'] is None else f'{r["peak_memory_mb"]:.0f}'
        mfu = f'{100 * r["mfu"]:.1f}' if 'mfu' in r else '-'
        split = ' '.join(f'{r["split_ms"].get(p, 0.0):>9.0f}' for p in STEP_PARTS + ('other',))
        lines.append(f'{r["frames"]:>3} {r["name"]:<{width}}{r["gflops_per_clip"]:>11.1f}{r["ms"]:>10.0f}'
                     f'{r["clips_per_s"]:>9.3f}{peak:>9}{mfu:>7}{r["speedup"]:>9.2f}  {split}')
    lines.append(f'speed-up = clips/s against {baseline} at the same T, measured in this run; GFLOP/clip: '
                 'forward+backward model FLOPs (no checkpoint recomputation); the split is one profiled step '
                 '(ms, torch.profiler ranges; backward and optimizer are whole-model).')
    lines.extend(f'  {r["name"]} T={r["frames"]}: {r["note"]}; losses {", ".join(r["losses"])}'
                 for r in records)
    return '\n'.join(lines)


def plot_costs(records: List[Dict[str, object]], path: str, title: str) -> None:
    """Median time, GFLOPs and peak memory against frames, one line per (name, phase), written to ``path``
    (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_flops, ax_memory) = plt.subplots(1, 3, figsize=(15, 4.2))
    series: Dict[tuple, List[Dict[str, object]]] = {}
    for record in records:
        series.setdefault((record['name'], record['phase']), []).append(record)
    for (name, phase), rows in series.items():
        rows = sorted(rows, key=lambda r: r['frames'])
        frames = [r['frames'] for r in rows]
        label = name if phase == 'forward' else f'{name} (fwd+bwd)'
        style = '-o' if phase == 'forward' else '--s'
        ax_time.plot(frames, [r['ms'] for r in rows], style, label=label)
        ax_flops.plot(frames, [r['gflops'] for r in rows], style, label=label)
        ax_memory.plot(frames, [float('nan') if r['peak_memory_mb'] is None else r['peak_memory_mb']
                                for r in rows], style, label=label)
    for ax, ylabel in ((ax_time, 'time per call (ms)'), (ax_flops, 'GFLOPs'),
                       (ax_memory, 'peak memory (MiB)')):
        ax.set_xlabel('frames')
        ax.set_ylabel(ylabel)
        ax.set_xticks(sorted({r['frames'] for r in records}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Run the benchmark, print progress and the table; return (and optionally write) the results."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    malloc = 'system default'
    if not args.system_malloc and retain_freed_memory():
        malloc = 'glibc, freed memory kept for reuse (svitt_mm.apis.cpu_allocator)'
    register_all_modules()
    unknown = [name for name, _ in args.dense_specs if name not in ATTENTION_OPS.module_dict]
    if args.op and unknown:
        raise SystemExit(f'benchmark: --dense {unknown} not registered in ATTENTION_OPS; known: '
                         f'{sorted(ATTENTION_OPS.module_dict)}')
    unknown = [name for name, _ in args.op_specs if name not in ATTENTION_OPS.module_dict]
    if args.op and unknown:
        raise SystemExit(f'benchmark: --ops {unknown} not registered in ATTENTION_OPS; known: '
                         f'{sorted(ATTENTION_OPS.module_dict)}')
    unknown = [name for name, _ in args.pattern_specs if name not in ATTENTION_PATTERNS.module_dict]
    if args.op and unknown:
        raise SystemExit(f'benchmark: --pattern {unknown} not registered in ATTENTION_PATTERNS; known: '
                         f'{sorted(ATTENTION_PATTERNS.module_dict)}')
    from svitt_mm.models.attention import BACKENDS
    unknown = [name for name in args.backend if name != 'auto' and name not in BACKENDS]
    if args.op and unknown:
        raise SystemExit(f'benchmark: --backend {unknown} are not backends; known: auto, {", ".join(BACKENDS)}')
    if args.data is not None:
        data = data_throughput(args)
        print(f"{data['config']}: {data['clips_per_s']:.1f} clips/s over {data['batches']} batches of "
              f"{data['batch_size']} ({data['num_workers']} workers); wait per batch: median "
              f"{data['median_batch_wait_s'] * 1e3:.1f} ms, max {data['max_batch_wait_s'] * 1e3:.1f} ms; "
              f"first batch {data['first_batch_s']:.2f} s")
        results = {'mode': 'data', 'machine': machine_info(torch.device('cpu'), malloc),
                   'settings': {k: v for k, v in vars(args).items() if k not in ('out', 'plot')},
                   'results': data}
        if args.out:
            mmengine.dump(results, args.out, indent=2)
            print(f'wrote {args.out}')
        return results
    device = torch.device(args.device)
    if args.train_step:
        return train_step_main(args, device, malloc)
    phases = PHASES if args.backward else PHASES[:1]
    cases = op_cases(args, device) if args.op else encoder_cases(args, device)
    names = [label for label, _ in op_configs(args)] if args.op else [
        osp.splitext(osp.basename(p))[0] for p in args.configs]
    total = len(args.frames) * len(names) * len(phases)

    records: List[Dict[str, object]] = []
    for name, frames, tokens, note, module, forward, loss, grad_tensors in cases:
        for phase in phases:
            try:
                result = measure(module, forward, loss, grad_tensors, phase, args, device)
            except ValueError as error:  # --op: a backend named with --backend that cannot run this case
                if not args.op:
                    raise
                total -= 1
                print(f'{name} T={frames} {phase}: skipped ({error})', flush=True)
                continue
            record = {'name': name, 'frames': frames, 'batch_size': args.batch_size, 'tokens': tokens,
                      'note': note, **result}
            if args.op:  # which backend computed it (BlockSparseAttention.last_backend)
                record['backend'] = getattr(module, 'last_backend', None) or 'dense'
            records.append(record)
            print(f'[{len(records)}/{total}] {name} T={frames} {phase}: {record["gflops"]:.3f} GFLOPs, '
                  f'{record["ms"]:.2f} ms (mean of {args.repeats})', flush=True)
    add_ratios(records)

    mode = 'op' if args.op else 'encoder'
    title = (f'attention layer: {args.heads} heads x {args.head_dim}, 1 + {args.tokens_per_frame}*T tokens, '
             f'{args.dtype}' if args.op else f'video encoders, batch {args.batch_size}, {args.dtype}')
    print(f'\n{title} on {device} ({torch.get_num_threads()} threads; malloc: {malloc})')
    print(format_table(records, names[0]))
    results = {'mode': mode, 'machine': machine_info(device, malloc),
               'settings': {k: v for k, v in vars(args).items() if k not in ('out', 'plot')},
               'results': records}
    if args.out:
        mmengine.dump(results, args.out, indent=2)
        print(f'wrote {args.out}')
    if args.plot:
        plot_costs(records, args.plot, title)
        print(f'wrote {args.plot}')
    return results


def train_step_main(args: argparse.Namespace, device: torch.device, malloc: str) -> Dict[str, object]:
    """``--train-step``: one record per config and frame count, ratios against the first config."""
    names = [osp.splitext(osp.basename(p))[0] for p in args.configs]
    records: List[Dict[str, object]] = []
    total = len(args.frames) * len(args.configs)
    for frames in args.frames:
        for path in args.configs:
            record = train_step_case(path, frames, args, device)
            records.append(record)
            print(f'[{len(records)}/{total}] {record["name"]} T={frames}: {record["gflops_per_clip"]:.1f} '
                  f'GFLOP/clip, {record["ms"]:.0f} ms/step (mean of {args.repeats}), first step '
                  f'{record["first_call_s"]:.1f} s', flush=True)
    add_ratios(records)
    precision = 'bf16 autocast' if args.amp else 'float32'
    extras = [x for x, on in (('activation checkpointing', args.with_cp), ('torch.compile', args.compile)) if on]
    title = f'training step, batch {args.batch_size}, {precision}' + ''.join(f', {x}' for x in extras)
    print(f'\n{title} on {device} ({torch.get_num_threads()} threads; malloc: {malloc})')
    print(format_train_table(records, names[0]))
    results = {'mode': 'train_step', 'machine': machine_info(device, malloc),
               'settings': {k: v for k, v in vars(args).items() if k not in ('out', 'plot')},
               'results': records}
    if args.out:
        mmengine.dump(results, args.out, indent=2)
        print(f'wrote {args.out}')
    return results


if __name__ == '__main__':
    run_tool(main)
