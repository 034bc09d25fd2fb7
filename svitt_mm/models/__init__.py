from . import attention, backbones, heads, pruners, text  # noqa: F401  (register parts)
from .algorithms import *  # noqa: F401,F403
from .data_preprocessor import VideoTextDataPreprocessor  # noqa: F401
from .qa_data_preprocessor import VideoQADataPreprocessor  # noqa: F401
