"""The dispatcher: 'auto' picks by the documented priority and says why faster backends were passed over,
once per situation; a named backend that cannot run raises; a FLOP count runs gather, and says so."""
import pytest
import torch

from svitt_mm.models.attention import BACKENDS, BlockSparseAttention, dispatch
from svitt_mm.models.attention.backends import AttentionCall, cpu_kernel, flex, triton
from svitt_mm.models.attention.flop_counting import flop_counting


@pytest.fixture
def logged(monkeypatch):
    messages = []
    monkeypatch.setattr(dispatch, '_LOGGED', set())
    monkeypatch.setattr(dispatch, 'print_log', lambda message, **kwargs: messages.append(message))
    return messages


def call(device='cpu', dtype=torch.float32, needs_grad=False, compiling=False) -> AttentionCall:
    return AttentionCall(device, dtype, needs_grad, False, False, compiling, 64, 1, 56)


def auto(backends, situation):
    return dispatch.passed_over(backends, situation)


def test_priority_order_is_documented_and_followed(monkeypatch):
    assert list(BACKENDS) == ['triton', 'cpu_kernel', 'flex', 'gather']
    monkeypatch.setattr(cpu_kernel, 'kernel_build_error', lambda: None)
    monkeypatch.setattr(triton, 'triton_installed', lambda: True)
    backends = {name: cls() for name, cls in BACKENDS.items()}
    assert auto(backends, call('cuda'))[0] == 'triton'
    assert auto(backends, call('cuda', needs_grad=True))[0] == 'triton'
    chosen, skipped = auto(backends, call('cpu'))
    assert chosen == 'cpu_kernel' and list(skipped) == ['triton']
    assert "interpreter" in skipped['triton'][0]
    chosen, skipped = auto(backends, call('cpu', torch.bfloat16, needs_grad=True))
    assert chosen == 'gather' and list(skipped) == ['triton', 'cpu_kernel', 'flex']
    assert skipped['cpu_kernel'] == ['computes in float32, not bfloat16']
    assert skipped['flex'] == ['has no backward on cpu (run under torch.no_grad())']
    assert auto(backends, call('cpu', compiling=True))[0] == 'gather'
    assert auto(backends, call('mps'))[0] == 'gather'
    assert auto(backends, call('cuda', torch.float64))[0] == 'gather'


def test_auto_logs_its_choice_and_why_once_per_situation(logged, monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'))
    q = torch.randn(1, 2, 21, 16)
    for _ in range(3):
        op(q, q, q)
    op(q.double(), q.double(), q.double())
    assert len(logged) == 2
    assert "backend='auto' chose" in logged[0] and 'passed over triton' in logged[0]
    assert "chose 'gather'" in logged[1] and 'passed over cpu_kernel: computes in float32, not float64' in logged[1]
    assert op.last_backend == 'gather'


def test_a_named_backend_that_cannot_run_raises_with_its_reasons(monkeypatch):
    monkeypatch.setattr(cpu_kernel, 'kernel_build_error', lambda: None)
    q = torch.randn(1, 2, 21, 16).bfloat16()
    op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'), backend='cpu_kernel')
    with pytest.raises(ValueError, match=r"backend 'cpu_kernel' cannot compute this call \(cpu bfloat16.*\): "
                                         'computes in float32, not bfloat16'):
        op(q, q, q)
    with pytest.raises(ValueError, match='cannot be traced by torch.compile'):
        dispatch.choose_backend(op.backends, 'cpu_kernel', call(compiling=True))
    flex_op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'), backend='flex')
    with pytest.raises(ValueError, match='has no backward on cpu'):
        flex_op(q.float().requires_grad_(), q.float(), q.float())


def test_a_flop_count_runs_gather_and_says_so(logged, monkeypatch):
    monkeypatch.setattr(cpu_kernel.CpuLocalAttention, 'apply', lambda *args: pytest.fail('kernel used'))
    monkeypatch.setattr(flex, 'flex_local_attention', lambda *args, **kwargs: pytest.fail('flex used'))
    q = torch.randn(1, 2, 21, 16)
    for backend in ('cpu_kernel', 'flex', 'auto'):
        op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'), backend=backend)
        with flop_counting():
            op(q, q, q)
        assert op.last_backend == 'gather'
    assert len(logged) == 3 and all("FLOP count" in message and "'gather' computes" in message for message in logged)
