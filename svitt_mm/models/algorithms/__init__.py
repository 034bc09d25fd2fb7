from .retrieval import VideoTextRetriever
from .video_qa import VideoQuestionAnswering
from .video_text_pretrainer import VideoTextPretrainer

__all__ = ['VideoTextRetriever', 'VideoTextPretrainer', 'VideoQuestionAnswering']
