"""Video-text annotation dataset (Singularity / SViTT JSON format)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from svitt_mm.registry import DATASETS

MODES = ('train', 'eval')


@DATASETS.register_module()
class VideoTextDataset(BaseDataset):
    """Videos paired with captions.

    The annotation file is a JSON list of ``{"video": "rel/path.mp4", "caption": str | [str]}``, video
    paths relative to ``media_root``. A video may appear in several entries.

    Each data info holds ``video_path`` (absolute), ``captions`` (list of str) and ``video_id`` (index of
    the distinct video in order of first appearance: entries naming the same video share the id, so
    duplicates count as positives in contrastive training).

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the ``video`` paths are relative to (joined with ``data_root`` when relative).
        pipeline: transforms applied to each data info.
        mode: ``'train'``: one item per (video, caption) pair; ``'eval'``: one item per distinct video
            with all its captions (from all entries naming it). ``'eval'`` also sets ``test_mode``.
        is_paragraph: join a list caption into one paragraph (DiDeMo / ActivityNet paragraph
            retrieval) instead of treating its sentences as separate captions.
        positives: what makes two training pairs positives of each other in the contrastive and
            matching losses: ``'video'`` (the same video; SViTT's default) or ``'caption'`` (the same
            caption text, for corpora where many videos share a caption, e.g. SSv2 templates or the demo
            data). It sets ``video_id`` of training items accordingly.
        check_media: check that every video file exists when the dataset is built (one ``stat`` per
            distinct video; turn off for huge corpora on slow file systems).
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments (``data_root``, ``indices``,
            ``serialize_data``, ``lazy_init``, ...).

    Raises (when the dataset is built, not mid-epoch):
        FileNotFoundError: missing annotation file or (with ``check_media``) video file.
        ValueError: malformed JSON, not a list, an entry without ``video``/``caption``, wrong types or
            empty captions; the message names the file, the entry index and the key.
    """

    def __init__(self, ann_file: str, media_root: str, pipeline: List = (), mode: str = 'train',
                 is_paragraph: bool = False, positives: str = 'video', check_media: bool = True,
                 **kwargs: Any) -> None:
        if mode not in MODES:
            raise ValueError(f'VideoTextDataset: mode must be one of {MODES}, got {mode!r}')
        if positives not in ('video', 'caption'):
            raise ValueError(f"VideoTextDataset: positives must be 'video' or 'caption', got {positives!r}")
        self.positives = positives
        data_root = kwargs.get('data_root') or ''
        self.media_root = os.path.abspath(
            media_root if os.path.isabs(media_root) or not data_root
            else os.path.join(data_root, media_root))
        self.mode = mode
        self.is_paragraph = is_paragraph
        self.check_media = check_media
        kwargs.setdefault('test_mode', mode == 'eval')
        # Pipeline steps are looked up in the current default scope (set by the Runner from the
        # config); outside a Runner, use svitt_mm's so that the dataset builds on its own too.
        scope = None if DefaultScope.get_current_instance() is not None else 'svitt_mm'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), **kwargs)

    def _read_entries(self) -> List[Dict]:
        if not os.path.isfile(self.ann_file):
            raise FileNotFoundError(f'VideoTextDataset: annotation file not found: {self.ann_file}')
        try:
            with open(self.ann_file, encoding='utf-8') as f:
                entries = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f'{self.ann_file}: malformed JSON ({err})') from None
        if not isinstance(entries, list):
            raise ValueError(f'{self.ann_file}: expected a JSON list of {{"video", "caption"}} objects, '
                             f'got {type(entries).__name__}')
        return entries

    def _captions_of(self, entry: Dict, index: int) -> List[str]:
        where = f'{self.ann_file}: entry {index}'
        caption = entry['caption']
        captions = [caption] if isinstance(caption, str) else caption
        if not isinstance(captions, list) or not captions:
            raise ValueError(f'{where}: "caption" must be a non-empty string or a non-empty list of '
                             f'strings, got {caption!r}')
        for i, text in enumerate(captions):
            key = 'caption' if isinstance(caption, str) else f'caption[{i}]'
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'{where}: "{key}" must be a non-empty string, got {text!r}')
        return [' '.join(c.strip() for c in captions)] if self.is_paragraph else captions

    def load_data_list(self) -> List[Dict]:
        """Parse and validate the annotation file into data infos (see the class docstring)."""
        video_ids: Dict[str, int] = {}
        captions_of_video: List[List[str]] = []
        paths: List[str] = []
        pairs: List[tuple] = []
        for index, entry in enumerate(self._read_entries()):
            if not isinstance(entry, dict):
                raise ValueError(f'{self.ann_file}: entry {index} must be an object with "video" and '
                                 f'"caption", got {type(entry).__name__}')
            for key in ('video', 'caption'):
                if key not in entry:
                    raise ValueError(f'{self.ann_file}: entry {index} has no "{key}" key')
            video = entry['video']
            if not isinstance(video, str) or not video.strip():
                raise ValueError(f'{self.ann_file}: entry {index}: "video" must be a non-empty path '
                                 f'string, got {video!r}')
            captions = self._captions_of(entry, index)
            path = os.path.normpath(os.path.join(self.media_root, video))
            if path not in video_ids:
                if self.check_media and not os.path.isfile(path):
                    raise FileNotFoundError(f'{self.ann_file}: entry {index}: "video" file not found: '
                                            f'{path}')
                video_ids[path] = len(paths)
                paths.append(path)
                captions_of_video.append([])
            video_id = video_ids[path]
            captions_of_video[video_id].extend(captions)
            pairs.extend((video_id, caption) for caption in captions)
        if self.mode == 'eval':
            return [dict(video_path=path, captions=captions, video_id=video_id)
                    for video_id, (path, captions) in enumerate(zip(paths, captions_of_video))]
        if self.positives == 'caption':
            # Several videos share a caption (SSv2 templates, the demo data): group by caption text.
            groups: Dict[str, int] = {}
            return [dict(video_path=paths[video_id], captions=[caption],
                         video_id=groups.setdefault(caption, len(groups)))
                    for video_id, caption in pairs]
        return [dict(video_path=paths[video_id], captions=[caption], video_id=video_id)
                for video_id, caption in pairs]
