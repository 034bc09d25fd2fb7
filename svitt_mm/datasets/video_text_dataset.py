"""Video-text annotation dataset (Singularity / SViTT JSON format)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from svitt_mm.registry import DATASETS
from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.text import read_json_list

from .annotation_file import media_path, require_keys, text_list
from .media_text_dataset import MediaTextDataset

MODES = ('train', 'eval')


@DATASETS.register_module()
class VideoTextDataset(MediaTextDataset):
    """Videos paired with captions.

    The annotation file is a JSON list of ``{"video": "rel/path.mp4", "caption": str | [str]}``, video
    paths relative to ``media_root``. A video may appear in several entries.

    Each data info holds ``video_path`` (absolute), ``captions`` (list of str) and ``video_id`` (index of
    the distinct video in order of first appearance: entries naming the same video share the id, so
    duplicates count as positives in contrastive training).

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the ``video`` paths are relative to (joined with ``data_root`` when relative;
            the same as ``data_prefix=dict(video_path=...)``).
        pipeline: transforms applied to each data info.
        mode: ``'train'``: one item per (video, caption) pair; ``'eval'``: one item per distinct video
            with all its captions (from all entries naming it). ``'eval'`` also sets ``test_mode``.
        is_paragraph: join a list caption into one paragraph (DiDeMo / ActivityNet paragraph
            retrieval) instead of treating its sentences as separate captions.
        positives: what makes two training pairs positives of each other in the contrastive and
            matching losses: ``'video'`` (the same video; SViTT's default) or ``'caption'`` (the same
            caption text, for corpora where many videos share a caption, e.g. SSv2 templates or the demo
            data). It sets ``video_id`` of training items accordingly.
        allow_duplicates: accept the same (video, caption) pair twice; by default it is an error (it
            double-weights the pair in training and duplicates a text query in evaluation).
        **kwargs: :class:`MediaTextDataset` arguments (``check_media``, ``on_broken_media``,
            ``max_broken_retries``, ``decode_backend``, ``data_prefix``) and the other
            :class:`mmengine.dataset.BaseDataset` arguments (``data_root``, ``indices``, ...).

    Raises (when the dataset is built, not mid-epoch):
        FileNotFoundError: missing annotation file or (with ``check_media``) video files (all listed).
        ValueError: malformed JSON, not a list, an entry without ``video``/``caption``, wrong types,
            empty captions, duplicate (video, caption) pairs or a video path outside ``media_root``; the
            message names the file, the entry index and the key.
        BrokenMediaError: (``on_broken_media='raise'`` with ``check_media``) videos that cannot be
            decoded, all listed.
    """

    def __init__(self, ann_file: str = '', media_root: Optional[str] = None, pipeline: List = (),
                 mode: str = 'train', is_paragraph: bool = False, positives: str = 'video',
                 allow_duplicates: bool = False, **kwargs: Any) -> None:
        if mode not in MODES:
            raise ArgumentError(f'VideoTextDataset: mode must be one of {MODES}, got {mode!r}')
        if positives not in ('video', 'caption'):
            raise ArgumentError(f"VideoTextDataset: positives must be 'video' or 'caption', got {positives!r}")
        self.positives = positives
        self.mode = mode
        self.is_paragraph = is_paragraph
        self.allow_duplicates = allow_duplicates
        kwargs.setdefault('test_mode', mode == 'eval')
        super().__init__(ann_file=ann_file, media_root=media_root, pipeline=pipeline, **kwargs)

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
                    raise InputFileError(f'{self.ann_file}: entry {index}: "caption" {caption!r} of video '
                                     f'{entry["video"]!r} duplicates entry {first_entry[video_id, caption]} '
                                     f'(set allow_duplicates=True to keep such pairs)')
                first_entry.setdefault((video_id, caption), index)
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
