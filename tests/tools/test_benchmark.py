"""tools/benchmark.py on the tiny demo encoders and on small attention layers: the JSON holds every number
and the machine info, FLOP counts match independent counts (torch's math attention path, closed-form pair
counts), the sparse model/operator counts fewer FLOPs than dense, and the plot is written. Times are
printed, never asserted. Also svitt_mm.apis.cost, which the tool is built on."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from svitt_mm.registry import BACKBONES
from svitt_mm.apis import count_flops, register_all_modules
from svitt_mm.models.attention.flop_counting import flop_counting

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DENSE = osp.join(ROOT, 'configs/demo/dense_demo.py')
SVITT = osp.join(ROOT, 'configs/demo/svitt_demo.py')
FAST = ['--repeats', '1', '--warmup', '0']


@pytest.fixture(scope='module')
def benchmark():
    spec = importlib.util.spec_from_file_location('benchmark_tool', osp.join(ROOT, 'tools/benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def math_path_flops(fn) -> int:
    """FLOPs counted with attention decomposed into plain matrix products (independent of cost.py; the
    block-sparse operators are told a count runs, so that they take their countable gather backend)."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), flop_counting(), counter:
        fn()
    return counter.get_total_flops()


def test_count_flops_counts_cpu_attention():
    q, k, v = torch.randn(3, 2, 2, 50, 16).unbind(0)
    mask = torch.zeros(1, 1, 50, 50)
    flops = count_flops(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert flops == 4 * 2 * 2 * 50 * 50 * 16  # 4 B H Nq Nk D
    assert flops == math_path_flops(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_count_flops_tells_operators_it_is_counting():
    from svitt_mm.models.attention.flop_counting import counting_flops
    seen = []
    count_flops(lambda: seen.append(counting_flops()))
    assert seen == [True] and not counting_flops()
    with pytest.raises(RuntimeError):
        count_flops(lambda: (_ for _ in ()).throw(RuntimeError('boom')))
    assert not counting_flops()


def test_encoder_mode_json_flops_and_plot(benchmark, tmp_path, capsys):
    out, png = tmp_path / 'tmp.json', tmp_path / 'tmp.png'
    returned = benchmark.main([DENSE, SVITT, '--frames', '4', *FAST, '--out', str(out), '--plot', str(png)])
    with open(out) as f:
        results = json.load(f)
    assert results == json.loads(json.dumps(returned))
    assert results['mode'] == 'encoder'
    assert results['machine']['torch'] == torch.__version__
    assert results['machine']['threads'] == torch.get_num_threads()
    assert {'device', 'device_name', 'cpu_count'} <= set(results['machine'])
    dense, svitt = results['results']
    assert (dense['name'], svitt['name']) == ('dense_demo', 'svitt_demo')
    for record in (dense, svitt):
        assert record['frames'] == 4 and record['batch_size'] == 1 and record['tokens'] == 1 + 4 * 16
        assert record['phase'] == 'forward' and record['first_call_s'] > 0
        assert record['peak_memory_mb'] is None or record['peak_memory_mb'] >= 0  # CPU: peak-RSS growth
        assert record['clips_per_s'] == pytest.approx(1 / record['seconds'])
        assert record['time_ratio'] == pytest.approx(record['seconds'] / dense['seconds'])

    # Independent count: the same encoder (random weights, max_frames=T) with math-path attention.
    register_all_modules()
    for path, record in ((DENSE, dense), (SVITT, svitt)):
        cfg = benchmark.encoder_config(path, 4)
        assert cfg['pretrained'] is None and cfg['max_frames'] == 4
        encoder = BACKBONES.build(cfg).eval()
        clip = torch.randn(1, 4, 3, 64, 64)
        with torch.no_grad():
            assert record['flops'] == math_path_flops(lambda: encoder(clip)) > 0
    assert svitt['flop_ratio'] == pytest.approx(svitt['flops'] / dense['flops'])
    assert svitt['flop_ratio'] < 1  # block-sparse attention + pruning
    assert dense['flop_ratio'] == 1

    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    printed = capsys.readouterr().out
    assert '[2/2] svitt_demo T=4 forward' in printed and 'FLOPs/base' in printed


def test_op_mode_counts_computed_pairs(benchmark, tmp_path):
    batch, heads, dim, per_frame, size = 1, 2, 16, 16, 8
    results = benchmark.main(['--op', '--frames', '2', '8', '--backward', *FAST, '--heads', str(heads),
                              '--head-dim', str(dim), '--tokens-per-frame', str(per_frame),
                              '--block-size', str(size)])
    records = {(r['name'], r['frames'], r['phase']): r for r in results['results']}
    assert len(records) == 8 and results['mode'] == 'op'

    # 8 frames: 128 local tokens = 16 blocks of 8; each sees [CLS] + own block + 3 random blocks.
    tokens, blocks = 1 + 8 * per_frame, 16
    dense_flops = 4 * batch * heads * tokens * tokens * dim + 2 * batch * heads * tokens * dim
    sparse_flops = 4 * batch * heads * dim * (tokens + blocks * size * (1 + 4 * size))
    dense, sparse = records['DenseAttention', 8, 'forward'], records['BlockSparseAttention', 8, 'forward']
    assert (dense['flops'], sparse['flops']) == (dense_flops, sparse_flops)
    assert sparse['flop_ratio'] == pytest.approx(sparse_flops / dense_flops) and sparse['flop_ratio'] < 1
    assert sparse['note'] == '16 blocks of 8'
    assert sparse['speedup'] == pytest.approx(dense['seconds'] / sparse['seconds'])
    backward = records['BlockSparseAttention', 8, 'forward_backward']
    assert backward['flop_ratio'] < 1 and backward['flops'] > sparse['flops']

    # 2 frames: 4 blocks, the pattern would cover every block, so the operator runs dense attention.
    fallback = records['BlockSparseAttention', 2, 'forward']
    assert fallback['note'] == 'dense fallback' and fallback['flop_ratio'] == 1


def test_op_mode_compares_several_operators_in_bfloat16(benchmark):
    results = benchmark.main(['--op', '--frames', '8', *FAST, '--heads', '2', '--head-dim', '16',
                              '--tokens-per-frame', '16', '--block-size', '8', '--dtype', 'bfloat16',
                              '--ops', 'BlockSparseAttention', 'FlexBlockSparseAttention'])
    records = {r['name']: r for r in results['results']}
    assert list(records) == ['DenseAttention', 'BlockSparseAttention', 'FlexBlockSparseAttention']
    assert results['settings']['dtype'] == 'bfloat16'
    # Flex is counted through the gather path: the pattern's pairs (its kernel's tile padding excluded).
    assert records['FlexBlockSparseAttention']['flops'] == records['BlockSparseAttention']['flops']
    assert records['FlexBlockSparseAttention']['flop_ratio'] < 1


def test_op_specs_pass_constructor_arguments(benchmark, capsys):
    results = benchmark.main(['--op', '--frames', '8', *FAST, '--heads', '2', '--head-dim', '16',
                              '--tokens-per-frame', '16', '--block-size', '8',
                              '--ops', 'BlockSparseAttention:random_blocks=1', 'TritonBlockSparseAttention:block_n=16'])
    records = {r['name']: r for r in results['results']}
    assert list(records) == ['DenseAttention', 'BlockSparseAttention:random_blocks=1',
                             'TritonBlockSparseAttention:block_n=16']
    # 16 blocks: one random block per row instead of the default three computes fewer pairs.
    assert (records['BlockSparseAttention:random_blocks=1']['flops']
            < records['TritonBlockSparseAttention:block_n=16']['flops'])
    for spec, message in (('BlockSparseAttention:block_n', 'expected NAME:key=value'),
                          ('BlockSparseAttention:eval_seed=[', 'is not a Python literal')):
        with pytest.raises(SystemExit):
            benchmark.main(['--op', '--ops', spec, '--frames', '1'])
        assert message in capsys.readouterr().err


def test_compile_times_the_compiled_forward_and_counts_the_eager_flops(benchmark, monkeypatch):
    compiled = []
    real_compile = torch.compile

    def recording_compile(fn, **kwargs):
        compiled.append(kwargs)
        return real_compile(fn, **kwargs)

    monkeypatch.setattr(benchmark.torch, 'compile', recording_compile)
    argv = ['--op', '--frames', '8', *FAST, '--heads', '2', '--head-dim', '16', '--tokens-per-frame', '16',
            '--block-size', '8']
    eager = benchmark.main(argv)
    assert not compiled
    results = benchmark.main(argv + ['--compile'])
    assert compiled == [dict(dynamic=False)] * 2 and results['settings']['compile'] is True
    # FLOPs are the eager ones, whatever the compiled kernels do.
    assert [r['flops'] for r in results['results']] == [r['flops'] for r in eager['results']]


def test_readable_errors(benchmark, tmp_path):
    with pytest.raises(SystemExit, match='config file not found: .*missing.py'):
        benchmark.main([str(tmp_path / 'missing.py'), '--frames', '1'])
    with pytest.raises(SystemExit):
        benchmark.main(['--op', DENSE])  # either configs or --op
    with pytest.raises(SystemExit, match=r"--ops \['NoSuchAttention'\] not registered"):
        benchmark.main(['--op', '--ops', 'NoSuchAttention', '--frames', '1'])


def test_cpu_peak_memory_sees_a_large_allocation():
    from svitt_mm.apis import peak_rss_mb
    peak = peak_rss_mb(lambda: torch.ones(16, 2**20).sum())  # 64 MiB of float32 touched
    if peak is None:
        pytest.skip('/proc/self/clear_refs is not available on this system')
    assert 60 < peak < 200


def test_data_mode_iterates_the_demo_loader(benchmark, tmp_path):
    from svitt_mm.datasets.demo import build_temporal_shapes
    build_temporal_shapes(osp.join(ROOT, 'data/demo/temporal_shapes'))  # where the demo config reads it;
    # reused as it is when already built
    out = tmp_path / 'data.json'
    results = benchmark.main(['--data', SVITT, '--batches', '2', '--batch-size', '2', '--num-workers', '0',
                              '--out', str(out)])
    data = results['results']
    assert results['mode'] == 'data' and data['batches'] == 2 and data['batch_size'] == 2
    assert data['num_workers'] == 0 and data['clips_per_s'] > 0
    assert data['clips_per_s'] == pytest.approx(4 / (data['median_batch_wait_s'] * 2), rel=1.0)
    assert json.loads(out.read_text())['results'] == data


OP_SHAPE = ['--heads', '2', '--head-dim', '16', '--tokens-per-frame', '16', '--block-size', '8']


def test_rows_per_pattern_and_backend_name_what_ran(benchmark, capsys, monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')  # triton cannot run here: its rows are skipped, not faked
    results = benchmark.main(['--op', '--frames', '8', '--backward', *FAST, *OP_SHAPE,
                              '--pattern', 'StridedBlocks:stride=4', 'LocalRandomBlocks:random_blocks=1',
                              '--backend', 'gather', 'flex', 'triton'])
    records = {(r['name'], r['phase']): r for r in results['results']}
    strided = 'BlockSparseAttention StridedBlocks:stride=4'
    assert records[f'{strided} gather', 'forward']['backend'] == 'gather'
    assert records[f'{strided} flex', 'forward']['backend'] == 'flex'
    assert (f'{strided} flex', 'forward_backward') not in records  # flex has no backward on CPU
    assert not any('triton' in name for name, _ in records)
    assert records['DenseAttention', 'forward']['backend'] == 'dense'
    printed = capsys.readouterr().out
    assert 'skipped (BlockSparseAttention: backend \'triton\' cannot compute' in printed
    assert '; ran gather' in printed and '; ran flex' in printed


def test_unknown_pattern_or_backend_is_a_readable_exit(benchmark):
    with pytest.raises(SystemExit, match='--pattern .*NoSuchBlocks.* not registered'):
        benchmark.main(['--op', '--frames', '1', *FAST, *OP_SHAPE, '--pattern', 'NoSuchBlocks'])
    with pytest.raises(SystemExit, match="--backend \\['cuda_kernel'\\] are not backends"):
        benchmark.main(['--op', '--frames', '1', *FAST, *OP_SHAPE, '--backend', 'cuda_kernel'])
