"""optim_wrappers"""
from .finite_loss_optim_wrapper import FiniteLossOptimWrapper, NonFiniteLossError, non_finite_terms

__all__ = ['FiniteLossOptimWrapper', 'NonFiniteLossError', 'non_finite_terms']
