"""The model wrapper of :class:`~.fully_shard_strategy.FullyShardStrategy`: a model whose layers and root
were sharded with torch's ``fully_shard`` (FSDP2), as MMEngine's loops and hooks expect a model wrapper.

Training steps run the sharded model as FSDP2 runs it (each sharded part all-gathers its parameters for its
forward and backward and frees them after). Evaluation calls the model outside ``forward`` (the retrieval
loop's re-ranking calls ``match_logits`` on ``.module``) and a different number of times on each rank, so
that per-call all-gathers would fail or deadlock; for evaluation the wrapper all-gathers every parameter
once, keeps the full parameters until the next training step and frees them then.
"""
from __future__ import annotations

from typing import Iterator

from torch import nn
from torch.distributed.fsdp import FSDPModule

from svitt_mm.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class FullyShardedModel(nn.Module):
    """Holds ``module`` (a model after ``fully_shard``) and runs MMEngine's ``train_step``/``val_step``/
    ``test_step`` on it; ``module`` is the model itself, with its own parameter names."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not isinstance(module, FSDPModule):
            raise TypeError(f'FullyShardedModel: expected a model after fully_shard, got {type(module).__name__}')
        self.module = module
        self._evaluating = False

    def sharded_modules(self) -> Iterator[FSDPModule]:
        """The root and every sharded part, in module order (the same on every rank)."""
        return (module for module in self.module.modules() if isinstance(module, FSDPModule))

    def _unshard_for_evaluation(self) -> None:
        """All-gather every parameter and keep it gathered after each forward (one collective per sharded
        part, the same on every rank; nothing is gathered again until training resumes)."""
        if not self._evaluating:
            self.module.set_reshard_after_forward(False)
            self._evaluating = True
        for module in self.sharded_modules():
            module.unshard()  # a no-op where a state-dict call left it gathered

    def _reshard_for_training(self) -> None:
        """Free the gathered parameters and restore FSDP2's default: sharded parts reshard after their
        forward, the root keeps its parameters until the backward pass needs them."""
        if not self._evaluating:
            return
        for module in self.sharded_modules():
            module.reshard()
        self.module.set_reshard_after_forward(True)
        self.module.set_reshard_after_forward(False, recurse=False)
        self._evaluating = False

    def train_step(self, data, optim_wrapper):
        self._reshard_for_training()
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        self._unshard_for_evaluation()
        return self.module.val_step(data)

    def test_step(self, data):
        self._unshard_for_evaluation()
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
