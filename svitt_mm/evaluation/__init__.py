from .qa_accuracy_metric import QAAccuracy
from .retrieval_metric import RetrievalMetric

__all__ = ['RetrievalMetric', 'QAAccuracy']
