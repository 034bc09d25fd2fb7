from .metrics_table_hook import MetricsTableHook

__all__ = ['MetricsTableHook']
