"""Text-guided visual token selection in the fusion encoder (SViTT's multimodal node sparsity)."""
from svitt_mm.registry import TOKEN_PRUNERS
from svitt_mm.utils.arg_checks import check_arguments, int_at_least

from .base import TokenPruner


@TOKEN_PRUNERS.register_module()
class TextGuidedPruner(TokenPruner):
    """Keep the visual tokens the text [CLS] attends to most in cross-attention.

    Applied after fusion layer ``layer`` (0 = the first fusion layer); later fusion layers see only the
    kept visual tokens (plus the visual [CLS], which the fusion encoder always keeps).
    """

    argument_checks = dict(TokenPruner.argument_checks, layer=int_at_least(0))

    def __init__(self, keep_rate: float, layer: int = 0) -> None:
        super().__init__(keep_rate)
        check_arguments(self, layer=layer)
        self.layer = layer
