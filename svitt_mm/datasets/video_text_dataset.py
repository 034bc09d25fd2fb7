"""Video-text annotation dataset (Singularity / SViTT JSON format)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from svitt_mm.registry import DATASETS
from svitt_mm.utils.text import read_json_list

from .annotation_file import media_path, require_keys, text_list
from .broken_media import BrokenMediaMixin, format_broken

MODES = ('train', 'eval')


@DATASETS.register_module()
class VideoTextDataset(BrokenMediaMixin, BaseDataset):
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
            distinct video; turn off for huge corpora on slow file systems, missing files are then
            handled by ``on_broken_media`` at run time).
        on_broken_media: videos that cannot be decoded (see :mod:`svitt_mm.datasets.broken_media`):
            ``'skip'`` (training default: replace the sample by a random other one, reported by
            ``BrokenMediaHook``), ``'raise'`` (evaluation default: decode-check every video when the
            dataset is built, unless ``check_media=False``, and list all broken ones in one error) or
            ``'exclude'`` (the same check; broken videos are dropped and counted as ``excluded_videos`` in
            the metrics).
        max_broken_retries: replacements in a row under ``'skip'`` before giving up.
        decode_backend: reader used by the build-time decode check (``'decord'`` or ``'pyav'``).
        allow_duplicates: accept the same (video, caption) pair twice; by default it is an error (it
            double-weights the pair in training and duplicates a text query in evaluation).
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments (``data_root``, ``indices``,
            ``serialize_data``, ``lazy_init``, ...).

    Raises (when the dataset is built, not mid-epoch):
        FileNotFoundError: missing annotation file or (with ``check_media``) video files (all listed).
        ValueError: malformed JSON, not a list, an entry without ``video``/``caption``, wrong types,
            empty captions, duplicate (video, caption) pairs or a video path outside ``media_root``; the
            message names the file, the entry index and the key.
        BrokenMediaError: (``on_broken_media='raise'`` with ``check_media``) videos that cannot be
            decoded, all listed.
    """

    def __init__(self, ann_file: str, media_root: str, pipeline: List = (), mode: str = 'train',
                 is_paragraph: bool = False, positives: str = 'video', check_media: bool = True,
                 on_broken_media: Optional[str] = None, max_broken_retries: int = 10,
                 decode_backend: str = 'decord', allow_duplicates: bool = False,
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
        self.allow_duplicates = allow_duplicates
        kwargs.setdefault('test_mode', mode == 'eval')
        self.init_broken_media(on_broken_media, max_broken_retries, kwargs['test_mode'], decode_backend,
                               check_at_build=check_media)
        # Pipeline steps are looked up in the current default scope (set by the Runner from the
        # config); outside a Runner, use svitt_mm's so that the dataset builds on its own too.
        scope = None if DefaultScope.get_current_instance() is not None else 'svitt_mm'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), **kwargs)

    def _check_files_exist(self, paths: List[str]) -> None:
        missing = [(path, 'file not found') for path in paths if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} of {len(paths)} video files not found (check media_root '
                f'{self.media_root}; check_media=False skips this check and leaves missing files to '
                f'on_broken_media at run time):\n{format_broken(missing)}')

    def _captions_of(self, entry: Dict, index: int) -> List[str]:
        captions = text_list(self.ann_file, index, 'caption', entry['caption'])
        return [' '.join(c.strip() for c in captions)] if self.is_paragraph else captions

    def load_data_list(self) -> List[Dict]:
        """Parse and validate the annotation file into data infos (see the class docstring)."""
        video_ids: Dict[str, int] = {}
        captions_of_video: List[List[str]] = []
        paths: List[str] = []
        pairs: List[tuple] = []
        first_entry: Dict[Tuple[int, str], int] = {}
        entries = read_json_list(self.ann_file, '{"video", "caption"}')
        for index, entry in enumerate(entries):
            entry = require_keys(self.ann_file, index, entry, ('video', 'caption'))
            path = media_path(self.ann_file, index, 'video', entry['video'], self.media_root)
            captions = self._captions_of(entry, index)
            if path not in video_ids:
                video_ids[path] = len(paths)
                paths.append(path)
                captions_of_video.append([])
            video_id = video_ids[path]
            for caption in captions:
                if (video_id, caption) in first_entry and not self.allow_duplicates:
                    raise ValueError(f'{self.ann_file}: entry {index}: "caption" {caption!r} of video '
                                     f'{entry["video"]!r} duplicates entry {first_entry[video_id, caption]} '
                                     f'(set allow_duplicates=True to keep such pairs)')
                first_entry.setdefault((video_id, caption), index)
            captions_of_video[video_id].extend(captions)
            pairs.extend((video_id, caption) for caption in captions)
        if self.check_media and self.on_broken_media == 'skip':
            self._check_files_exist(paths)  # otherwise the decode check lists missing files too
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
