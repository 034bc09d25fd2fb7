"""Every registered pattern on every backend this machine runs, through the public conformance suite
(``svitt_mm.testing.check_block_pattern``): outputs, global probabilities and gradients against masked dense
attention, key padding, 1-3 global tokens, per-sample bias, bfloat16, deterministic evaluation and re-drawn
training patterns. On CPU, Triton runs in its interpreter (``tests/conftest.py``) and flex uncompiled.
"""
import pytest
import torch

from svitt_mm.models.attention import BACKENDS, AttentionCall
from svitt_mm.registry import ATTENTION_PATTERNS
from svitt_mm.testing import CONFORMANCE_CASES
from svitt_mm.testing.attention_conformance import run_case

ATTENTION_PATTERNS.import_from_location()
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
OPTIONS = dict(flex=dict(compile=False))  # flex's eager reference: no 20 s compile per shape on CPU


def machine_reasons(backend: str, device: str):
    """Why ``backend`` cannot run a plain float32 forward on ``device`` here (empty: it can)."""
    call = AttentionCall(device, torch.float32, False, True, True, False, 16, 1, 4)
    return BACKENDS[backend]().not_supported_reasons(call)


PARAMS = [pytest.param(pattern, backend, device, id=f'{pattern}-{backend}-{device}',
                       marks=pytest.mark.skipif(bool(machine_reasons(backend, device)),
                                                reason='; '.join(machine_reasons(backend, device))))
          for pattern in sorted(ATTENTION_PATTERNS.module_dict) for backend in BACKENDS for device in DEVICES]


@pytest.mark.parametrize('case', list(CONFORMANCE_CASES))
@pytest.mark.parametrize('pattern,backend,device', PARAMS)
def test_pattern_conforms_on_backend(pattern, backend, device, case):
    status = run_case(dict(type=pattern), backend, case, device, backend_options=OPTIONS)
    if backend == 'gather' or (backend == 'cpu_kernel' and case != 'bfloat16') \
            or (backend == 'triton' and (device == 'cuda' or case != 'bfloat16')):
        assert status == 'passed', status
    if backend == 'flex' and device == 'cpu':
        assert status.startswith('forward only'), status  # torch 2.14: no flex backward on CPU
