"""Video question answering dataset (Singularity / SViTT QA annotation format)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from svitt_mm.registry import DATASETS

from svitt_mm.utils.text import read_answer_list, read_json_list

from .annotation_file import media_path, require_keys, text_list


@DATASETS.register_module()
class VideoQADataset(BaseDataset):
    """Questions about videos with free-form answers.

    The annotation file is a JSON list of ``{"video": "rel/path.mp4", "question": str, "answer": str |
    [str], "question_id": int | str, "type": str (optional)}``; a list answer holds the annotators'
    answers (repeats count: they weight the training loss). Video paths are relative to ``media_root``.

    Each data info holds ``video_path`` (absolute), ``question``, ``answers`` (list of str),
    ``question_id`` and ``question_type`` (the entry's ``type``, or ``None``).

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the ``video`` paths are relative to (joined with ``data_root`` when relative).
        pipeline: transforms applied to each data info.
        answer_list: optional JSON list of candidate answers (the model ranks them); checked here.
        check_media: check that every video file exists when the dataset is built.
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments (``data_root``, ``test_mode``,
            ``indices``, ...).

    Raises (when the dataset is built, not mid-epoch):
        FileNotFoundError: missing annotation file, answer list or (with ``check_media``) video file.
        ValueError: malformed JSON, not a list, an entry without a required key, wrong types, empty
            strings or duplicate question ids; the message names the file, the entry index and the key.
    """

    REQUIRED_KEYS = ('video', 'question', 'answer', 'question_id')

    def __init__(self, ann_file: str, media_root: str, pipeline: List = (),
                 answer_list: Optional[str] = None, check_media: bool = True, **kwargs: Any) -> None:
        data_root = kwargs.get('data_root') or ''
        self.media_root = os.path.abspath(
            media_root if os.path.isabs(media_root) or not data_root
            else os.path.join(data_root, media_root))
        self.answer_list = None
        if answer_list is not None:
            path = answer_list if os.path.isabs(answer_list) or not data_root \
                else os.path.join(data_root, answer_list)
            self.answer_list = read_answer_list(path)
        self.check_media = check_media
        # Pipeline steps are looked up in the current default scope (set by the Runner from the
        # config); outside a Runner, use svitt_mm's so that the dataset builds on its own too.
        scope = None if DefaultScope.get_current_instance() is not None else 'svitt_mm'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[Dict]:
        """Parse and validate the annotation file into data infos (see the class docstring)."""
        infos = []
        question_ids: Dict[Any, int] = {}
        checked_videos = set()
        for index, entry in enumerate(read_json_list(self.ann_file, '{"video", "question", "answer", '
                                                     '"question_id"}')):
            where = f'{self.ann_file}: entry {index}'
            entry = require_keys(self.ann_file, index, entry, self.REQUIRED_KEYS)
            path = media_path(self.ann_file, index, 'video', entry['video'], self.media_root)
            if not isinstance(entry['question'], str) or not entry['question'].strip():
                raise ValueError(f'{where}: "question" must be a non-empty string, got '
                                 f'{entry["question"]!r}')
            question_id = entry['question_id']
            if isinstance(question_id, bool) or not isinstance(question_id, (int, str)):
                raise ValueError(f'{where}: "question_id" must be an int or a string, got '
                                 f'{question_id!r}')
            if question_id in question_ids:
                raise ValueError(f'{where}: "question_id" {question_id!r} repeats entry '
                                 f'{question_ids[question_id]}')
            question_ids[question_id] = index
            question_type = entry.get('type')
            if question_type is not None and (not isinstance(question_type, str) or not question_type):
                raise ValueError(f'{where}: "type" must be a non-empty string, got {question_type!r}')
            if self.check_media and path not in checked_videos:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f'{where}: "video" file not found: {path}')
                checked_videos.add(path)
            infos.append(dict(video_path=path, question=entry['question'],
                              answers=text_list(self.ann_file, index, 'answer', entry['answer']), question_id=question_id,
                              question_type=question_type))
        return infos
