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


def tiny_train_configs(tmp_path):
    """dense_demo.py / svitt_demo.py with the tiny model of the tool tests (random 2-layer text encoder)."""
    from tool_helpers import TINY_MODEL
    paths = []
    for name in ('dense_demo', 'svitt_demo'):
        path = tmp_path / f'tiny_{name}.py'
        extra = "model['text_encoder']['num_layers'] = 3\n"  # 2 fusion layers: room for the text pruner
        extra += "model['vision_encoder']['prune_layers'] = (1,)\n" if name == 'svitt_demo' else ''
        path.write_text(f"_base_ = [{osp.join(ROOT, 'configs/demo', name + '.py')!r}]\n" + TINY_MODEL + extra)
        paths.append(str(path))
    return paths


def test_train_step_mode_times_whole_steps_and_counts_their_flops(benchmark, tmp_path, capsys):
    dense, svitt = tiny_train_configs(tmp_path)
    out = tmp_path / 'step.json'
    results = benchmark.main(['--train-step', dense, svitt, '--frames', '2', '--batch-size', '2', *FAST,
                              '--peak-tflops', '1', '--out', str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results['mode'] == 'train_step'
    base, sparse = results['results']
    assert (base['name'], sparse['name']) == ('tiny_dense_demo', 'tiny_svitt_demo')
    for record in (base, sparse):
        assert record['phase'] == 'train_step' and record['frames'] == 2 and record['batch_size'] == 2
        assert record['losses'] == ['loss_itc', 'loss_itm']
        assert record['clips_per_s'] == pytest.approx(2 / record['seconds'])
        assert record['mfu'] == pytest.approx(record['flops'] / record['seconds'] / 1e12)
        assert set(benchmark.STEP_PARTS) <= set(record['split_ms'])
        for part in ('video encoder', 'text encoder', 'fusion', 'heads', 'backward', 'optimizer'):
            assert record['split_ms'][part] > 0, part  # every part ran inside its profiler range
        assert record['peak_memory_mb'] is None or record['peak_memory_mb'] >= 0
    assert sparse['speedup'] == pytest.approx(base['seconds'] / sparse['seconds'])
    assert sparse['flops'] < base['flops']  # block-sparse attention and pruning compute less

    # Independent count of the dense step's forward+backward FLOPs: the same model and batch, math-path
    # attention, without the optimizer (which does no matrix products).
    import mmengine.config
    model_cfg, cfg, _ = benchmark.train_model_config(dense, 2)
    register_all_modules()
    from svitt_mm.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).train()
    args = benchmark.parse_args(['--train-step', dense, '--batch-size', '2'])
    inputs, samples = benchmark.synthetic_batch(model, args, 2, cfg.get('max_text_len', 32), torch.device('cpu'))
    assert isinstance(cfg, mmengine.config.Config)
    expected = math_path_flops(lambda: sum(model.loss(inputs, samples).values()).backward())
    assert base['flops'] == expected
    printed = capsys.readouterr().out
    assert 'video encoder' in printed and 'MFU %' in printed and 'tiny_svitt_demo' in printed


def test_train_step_switches_checkpointing_and_bf16(benchmark, tmp_path, monkeypatch):
    dense, _ = tiny_train_configs(tmp_path)
    seen = []
    real = benchmark.count_flops

    def recording_count(fn):
        seen.append('count')
        return real(fn)

    monkeypatch.setattr(benchmark, 'count_flops', recording_count)
    plain = benchmark.main(['--train-step', dense, '--frames', '2', *FAST])['results'][0]
    checkpointed = benchmark.main(['--train-step', dense, '--frames', '2', *FAST, '--with-cp',
                                   '--amp'])['results'][0]
    assert seen == ['count', 'count']
    assert checkpointed['flops'] == plain['flops']  # model FLOPs: no recomputation counted
    assert checkpointed['note'] == plain['note']


def test_train_step_refuses_bad_arguments(benchmark, tmp_path):
    dense, _ = tiny_train_configs(tmp_path)
    for argv in (['--train-step'], [dense, '--amp'], ['--train-step', dense, '--peak-tflops', '0']):
        with pytest.raises(SystemExit):
            benchmark.main(argv)
    with pytest.raises(Exception, match='config file not found'):
        benchmark.main(['--train-step', str(tmp_path / 'missing.py')])


def test_op_mode_with_bias_and_the_strong_dense_baseline(benchmark, capsys):
    results = benchmark.main(['--op', '--bias', '--frames', '4', '--backward', *FAST, *OP_SHAPE,
                              '--dense', 'FusedBiasDenseAttention', 'DenseAttention',
                              "FusedBiasDenseAttention:backend='flex'", '--backend', 'gather'])
    records = {(r['name'], r['phase']): r for r in results['results']}
    strong = records['FusedBiasDenseAttention', 'forward_backward']
    assert strong['baseline'] == 'FusedBiasDenseAttention' and strong['time_ratio'] == 1
    # Same function; its backward recomputes the logits once (2 B H N^2 D more than the math path).
    tokens = 1 + 16 * 4
    assert strong['flops'] == records['DenseAttention', 'forward_backward']['flops'] + 2 * 2 * tokens ** 2 * 16
    assert records['FusedBiasDenseAttention', 'forward']['flops'] == records['DenseAttention', 'forward']['flops']
    assert "relative position bias" in strong['note']
    assert (records["FusedBiasDenseAttention:backend='flex'", 'forward']['flops']
            == records['FusedBiasDenseAttention', 'forward']['flops'])
    assert ("FusedBiasDenseAttention:backend='flex'", 'forward_backward') not in records  # no CPU backward
    assert 'no CPU backward' in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"--dense \['NoSuchDense'\] not registered"):
        benchmark.main(['--op', '--frames', '1', *FAST, *OP_SHAPE, '--dense', 'NoSuchDense'])
    with pytest.raises(SystemExit):
        benchmark.main(['--op', '--bias', '--frames', '1', *FAST, '--tokens-per-frame', '15'])
