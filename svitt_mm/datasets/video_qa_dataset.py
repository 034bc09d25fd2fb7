"""Video question answering dataset (Singularity / SViTT QA annotation format)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from mmengine.fileio import join_path
from mmengine.utils import is_abs

from svitt_mm.registry import DATASETS
from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.text import read_answer_list, read_json_list

from .annotation_file import media_path, require_keys, text_list
from .media_text_dataset import MediaTextDataset


@DATASETS.register_module()
class VideoQADataset(MediaTextDataset):
    """Questions about videos with free-form answers.

    The annotation file is a JSON list of ``{"video": "rel/path.mp4", "question": str, "answer": str |
    [str], "question_id": int | str, "type": str (optional)}``; a list answer holds the annotators'
    answers (repeats count: they weight the training loss). Video paths are relative to ``media_root``.

    Each data info holds ``video_path`` (absolute), ``question``, ``answers`` (list of str),
    ``question_id`` and ``question_type`` (the entry's ``type``, or ``None``).

    Videos that cannot be decoded are handled by ``on_broken_media`` as :class:`MediaTextDataset`
    describes: replaced in training (``'skip'``, the default without ``test_mode``), listed at build
    (``'raise'``, the default with ``test_mode``) or dropped (``'exclude'``; ``QAAccuracy`` then reports
    their number as ``excluded_videos``).

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the ``video`` paths are relative to (joined with ``data_root`` when relative;
            the same as ``data_prefix=dict(video_path=...)``).
        pipeline: transforms applied to each data info.
        answer_list: optional JSON list of candidate answers (the model ranks them; joined with
            ``data_root`` when relative); checked here.
        **kwargs: :class:`MediaTextDataset` arguments (``check_media``, ``on_broken_media``,
            ``max_broken_retries``, ``decode_backend``, ``data_prefix``) and the other
            :class:`mmengine.dataset.BaseDataset` arguments (``data_root``, ``test_mode``, ``indices``, ...).

    Raises (when the dataset is built, not mid-epoch):
        FileNotFoundError: missing annotation file, answer list or (with ``check_media``) video files.
        ValueError: malformed JSON, not a list, an entry without a required key, wrong types, empty
            strings or duplicate question ids; the message names the file, the entry index and the key.
        BrokenMediaError: (``on_broken_media='raise'`` with ``check_media``) videos that cannot be
            decoded, all listed.
    """

    REQUIRED_KEYS = ('video', 'question', 'answer', 'question_id')

    def __init__(self, ann_file: str = '', media_root: Optional[str] = None, pipeline: List = (),
                 answer_list: Optional[str] = None, **kwargs: Any) -> None:
        data_root = kwargs.get('data_root') or ''
        self.answer_list = None if answer_list is None else read_answer_list(
            answer_list if is_abs(answer_list) or not data_root else join_path(data_root, answer_list))
        super().__init__(ann_file=ann_file, media_root=media_root, pipeline=pipeline, **kwargs)

    def load_data_list(self) -> List[Dict]:
        """Parse and validate the annotation file into data infos (see the class docstring)."""
        infos = []
        question_ids: Dict[Any, int] = {}
        for index, entry in enumerate(read_json_list(self.ann_file, '{"video", "question", "answer", '
                                                     '"question_id"}')):
            where = f'{self.ann_file}: entry {index}'
            entry = require_keys(self.ann_file, index, entry, self.REQUIRED_KEYS)
            path = media_path(self.ann_file, index, 'video', entry['video'], self.media_root)
            if not isinstance(entry['question'], str) or not entry['question'].strip():
                raise InputFileError(f'{where}: "question" must be a non-empty string, got '
                                 f'{entry["question"]!r}')
            question_id = entry['question_id']
            if isinstance(question_id, bool) or not isinstance(question_id, (int, str)):
                raise InputFileError(f'{where}: "question_id" must be an int or a string, got '
                                 f'{question_id!r}')
            if question_id in question_ids:
                raise InputFileError(f'{where}: "question_id" {question_id!r} repeats entry '
                                 f'{question_ids[question_id]}')
            question_ids[question_id] = index
            question_type = entry.get('type')
            if question_type is not None and (not isinstance(question_type, str) or not question_type):
                raise InputFileError(f'{where}: "type" must be a non-empty string, got {question_type!r}')
            infos.append(dict(video_path=path, question=entry['question'],
                              answers=text_list(self.ann_file, index, 'answer', entry['answer']),
                              question_id=question_id, question_type=question_type))
        return infos
