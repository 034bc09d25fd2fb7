"""The base of svitt_mm's datasets that pair media files (videos, images) with text."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.errors import MissingFileError

from .broken_media import BrokenMediaMixin, format_broken
from .worker_seeding import EpochSeededWorkers


class MediaTextDataset(EpochSeededWorkers, BrokenMediaMixin, BaseDataset):
    """Media files paired with text, read from a JSON annotation file, with broken-media policies.

    Paths follow MMEngine's :class:`~mmengine.dataset.BaseDataset`: ``ann_file`` and the media folder
    ``data_prefix[media_path_key]`` are joined with ``data_root`` when relative. The media folder is
    made absolute (:attr:`media_root`); the media paths in the annotations are relative to it, and each
    data info keeps its file's absolute path under ``media_path_key`` (``'video_path'``, or
    ``'img_path'`` for images).

    Subclasses set ``media_path_key`` and ``media_kind`` (and, for media other than video,
    ``media_errors`` and :meth:`check_media_file`, see
    :class:`~svitt_mm.datasets.broken_media.BrokenMediaMixin`) and implement ``load_data_list``.

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the annotation's media paths are relative to (joined with ``data_root`` when
            relative); short for ``data_prefix={media_path_key: media_root}``. Default: ``data_root``.
        pipeline: transforms applied to each data info; their types are looked up in the current
            default scope (set by the Runner from the config), else in ``svitt_mm``'s, so a dataset also
            builds outside a Runner.
        check_media: check the media when the dataset is built: under ``on_broken_media='skip'`` which
            files are missing (one ``stat`` per distinct file; each is logged, then skipped like other
            broken media; the build stops only when none exists);
            under ``'raise'`` that every file decodes. Turn off for huge corpora on slow file systems;
            broken files are then handled by ``on_broken_media`` when they are loaded.
        on_broken_media: media that cannot be read (see :mod:`svitt_mm.datasets.broken_media`):
            ``'skip'`` (training default: the sample is replaced by a random other one, reported by
            ``BrokenMediaHook``), ``'raise'`` (evaluation default, i.e. with ``test_mode``: decode-check
            every file when the dataset is built, unless ``check_media=False``, and list all broken ones
            in one error) or ``'exclude'`` (the same check; broken items are dropped, listed in
            ``excluded_media``, and their number is in ``metainfo['excluded_media']`` for the metrics).
        max_broken_retries: replacements in a row under ``'skip'`` before giving up.
        decode_backend: video reader used by the build-time decode check (``'decord'`` or ``'pyav'``).
        data_prefix: MMEngine's ``data_prefix``; its ``media_path_key`` entry is the media folder.
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments (``data_root``, ``test_mode``,
            ``indices``, ``serialize_data``, ``lazy_init``, ...).

    Raises (when the dataset is built):
        ValueError: ``media_root`` and ``data_prefix`` name different media folders, or bad policy
            arguments.
        MissingFileError: (``check_media`` under ``'skip'``) none of the media files exists (a wrong
            media root).
        BrokenMediaError: (``check_media`` under ``'raise'``) media files that cannot be decoded, all
            listed.
    """

    media_kind = 'video'  # in messages: "3 of 10 video files not found"

    def __init__(self, ann_file: str = '', media_root: Optional[str] = None, pipeline: List = (),
                 check_media: bool = True, on_broken_media: Optional[str] = None,
                 max_broken_retries: int = 10, decode_backend: str = 'decord',
                 data_prefix: Optional[Dict[str, str]] = None, **kwargs: Any) -> None:
        data_prefix = dict(data_prefix or {})
        if media_root is not None:
            if data_prefix.get(self.media_path_key, media_root) != media_root:
                raise ArgumentError(f'{type(self).__name__}: media_root={media_root!r} and data_prefix='
                                    f'{data_prefix!r} name different media folders; give one of them')
            data_prefix[self.media_path_key] = media_root
        data_prefix.setdefault(self.media_path_key, '')
        self.check_media = check_media
        self.init_worker_seeding()
        self.init_broken_media(on_broken_media, max_broken_retries, kwargs.get('test_mode', False),
                               decode_backend, check_at_build=check_media)
        scope = None if DefaultScope.get_current_instance() is not None else 'svitt_mm'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), data_prefix=data_prefix, **kwargs)

    def __getitem__(self, idx: int) -> Any:
        """The sample (after the broken-media policy), drawn in a worker from generators seeded for this
        epoch (:class:`~svitt_mm.datasets.worker_seeding.EpochSeededWorkers`)."""
        self.reseed_worker()
        return super().__getitem__(idx)

    @property
    def media_root(self) -> str:
        """The absolute media folder (``data_prefix[media_path_key]``)."""
        return self.data_prefix[self.media_path_key]

    def _join_prefix(self) -> None:
        super()._join_prefix()
        # Absolute and normalised: media paths are checked to stay inside it.
        self.data_prefix[self.media_path_key] = os.path.abspath(self.data_prefix[self.media_path_key])

    def filter_data(self) -> List[dict]:
        """The broken-media checks (:meth:`BrokenMediaMixin.filter_data`); under ``'skip'`` with
        ``check_media``, which media files are missing: each is logged (WARNING) and later skipped like any
        broken file (``BrokenMediaHook`` counts it and stops past its share); when none of them exists the
        media root must be wrong, and the build stops."""
        data_list = super().filter_data()
        if self.check_media and self.on_broken_media == 'skip':
            paths = list(dict.fromkeys(info[self.media_path_key] for info in data_list))
            missing = [(path, 'file not found') for path in paths if not os.path.isfile(path)]
            if missing and len(missing) == len(paths):
                raise MissingFileError(
                    f'{self.ann_file}: none of its {len(paths)} {self.media_kind} files exists under media_root '
                    f'{self.media_root} (e.g. {missing[0][0]}); point media_root (or data_prefix) at the '
                    f'folder the annotation paths are relative to')
            if missing:
                print_log(f'{self.ann_file}: {len(missing)} of {len(paths)} {self.media_kind} files not found; '
                          f'training skips them like other broken media:\n{format_broken(missing)}',
                          logger='current', level=logging.WARNING)
        return data_list
