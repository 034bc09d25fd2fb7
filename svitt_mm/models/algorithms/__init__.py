from .retrieval import VideoTextRetriever

__all__ = ['VideoTextRetriever']
