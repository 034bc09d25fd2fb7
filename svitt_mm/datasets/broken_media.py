"""What a dataset does with samples whose media file (video, image) cannot be read.

:class:`BrokenMediaMixin` gives any :class:`mmengine.dataset.BaseDataset` subclass three policies,
chosen with ``on_broken_media``:

* ``'skip'`` (training): a sample whose pipeline raises one of ``media_errors`` is replaced by a random
  other sample (at most ``max_broken_retries`` replacements in a row). The failures travel inside the
  returned sample (``data_samples['skipped']``, a list of ``{'path', 'reason'}``; dataloader workers are
  separate processes) so that :class:`~svitt_mm.engine.hooks.BrokenMediaHook` can log each file once,
  count skips per epoch and stop training when too many fail. Not allowed in ``test_mode``: evaluation
  never replaces samples.
* ``'raise'``: every distinct media file is decode-checked when the dataset is built, and one error lists
  all broken files.
* ``'exclude'``: the same check, but broken items are dropped, listed in ``excluded_media`` and logged;
  their number is also ``metainfo['excluded_media']``. The retrieval and QA metrics report it as
  ``excluded_videos``.

Use: subclass :class:`~svitt_mm.datasets.media_text_dataset.MediaTextDataset`, which sets the mixin up.
Elsewhere: list the mixin before ``BaseDataset`` in the bases, call :meth:`init_broken_media` before
``BaseDataset.__init__``, keep the file path under ``media_path_key`` in each data info, and override
:meth:`check_media_file` (and ``media_errors``) for media other than video.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

from mmengine.logging import print_log

from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.errors import UserError

from .transforms.video_reading import VideoDecodeError, check_video

BROKEN_MEDIA_POLICIES = ('skip', 'raise', 'exclude')
SKIPPED_KEY = 'skipped'
MAX_LISTED = 20


def format_broken(broken: Sequence[Tuple[str, str]], limit: int = MAX_LISTED) -> str:
    """``broken`` ``(path, reason)`` pairs as indented lines, the first ``limit`` of them."""
    lines = [f'  {path}: {reason}' for path, reason in broken[:limit]]
    if len(broken) > limit:
        lines.append(f'  ... and {len(broken) - limit} more')
    return '\n'.join(lines)


class BrokenMediaError(UserError, RuntimeError):
    """Media files that could not be read; ``broken`` holds ``(path, reason)`` pairs."""

    def __init__(self, message: str, broken: Sequence[Tuple[str, str]] = ()) -> None:
        # without `broken`: a message re-raised by MMEngine's registry or a data-loader worker
        super().__init__(f'{message}\n{format_broken(broken)}' if broken else message)
        self.broken = list(broken)

    def __reduce__(self):
        return type(self), (str(self).split('\n', 1)[0], self.broken)


def attach_skipped(data: Any, skipped: List[Dict[str, str]]) -> Any:
    """Put the skip records into a packed sample: ``data['data_samples']`` (a dict or an MMEngine data
    element's metainfo) or, for unpacked results, ``data`` itself."""
    samples = data.get('data_samples') if isinstance(data, dict) else None
    if isinstance(samples, dict):
        samples[SKIPPED_KEY] = skipped
    elif samples is not None and hasattr(samples, 'set_metainfo'):
        samples.set_metainfo({SKIPPED_KEY: skipped})
    else:
        data[SKIPPED_KEY] = skipped
    return data


def skipped_records(data_sample: Any) -> List[Dict[str, str]]:
    """The skip records :func:`attach_skipped` put into one collated data sample (``[]`` if none)."""
    if isinstance(data_sample, dict):
        return list(data_sample.get(SKIPPED_KEY, ()))
    metainfo = getattr(data_sample, 'metainfo', None)
    return list(metainfo.get(SKIPPED_KEY, ())) if isinstance(metainfo, dict) else []


class BrokenMediaMixin:
    """Broken-media policies for a ``BaseDataset`` subclass (see the module docstring)."""

    media_path_key = 'video_path'
    media_errors: Tuple[Type[BaseException], ...] = (VideoDecodeError,)

    def init_broken_media(self, on_broken_media: Optional[str], max_broken_retries: int,
                          test_mode: bool, decode_backend: str = 'decord',
                          check_at_build: bool = True) -> None:
        """Set the policy; ``None`` means ``'raise'`` in ``test_mode`` and ``'skip'`` otherwise.
        ``check_at_build=False`` skips the build-time decode check under ``'raise'`` (errors then surface
        when a sample is loaded); ``'exclude'`` always checks.

        Raises:
            ValueError: unknown policy, ``'skip'`` in ``test_mode`` or ``max_broken_retries < 0``.
        """
        owner = type(self).__name__
        policy = on_broken_media or ('raise' if test_mode else 'skip')
        if policy not in BROKEN_MEDIA_POLICIES:
            raise ArgumentError(f'{owner}: on_broken_media must be one of {BROKEN_MEDIA_POLICIES}, got '
                                f'{on_broken_media!r}')
        if policy == 'skip' and test_mode:
            raise ArgumentError(f"{owner}: on_broken_media='skip' would replace evaluation samples with "
                                f"others; use 'raise' (default) or 'exclude' for evaluation datasets")
        if not isinstance(max_broken_retries, int) or max_broken_retries < 0:
            raise ArgumentError(f'{owner}: max_broken_retries must be an int >= 0, got {max_broken_retries!r}')
        self.on_broken_media = policy
        self.max_broken_retries = max_broken_retries
        self.decode_backend = decode_backend
        self.check_at_build = check_at_build or policy == 'exclude'
        self.excluded_media: List[Tuple[str, str]] = []

    def check_media_file(self, path: str) -> None:
        """Raise one of ``media_errors`` if ``path`` cannot be decoded (here: a video)."""
        check_video(path, self.decode_backend)

    def find_broken_media(self, paths: Sequence[str]) -> List[Tuple[str, str]]:
        """``(path, reason)`` of every path in ``paths`` (checked once each) that fails to decode."""
        broken = []
        for path in dict.fromkeys(paths):
            try:
                self.check_media_file(path)
            except self.media_errors as err:
                broken.append((path, getattr(err, 'reason', str(err))))
        return broken

    def filter_data(self) -> List[dict]:
        """Decode-check the media of all data infos under ``'raise'`` / ``'exclude'``."""
        data_list = super().filter_data()
        if self.on_broken_media == 'skip' or not self.check_at_build:
            return data_list
        paths = [info[self.media_path_key] for info in data_list]
        broken = self.find_broken_media(paths)
        if self.on_broken_media == 'exclude':
            # Evaluators pass the dataset's metainfo to the metrics (``dataset_meta``).
            self._metainfo['excluded_media'] = len(broken)
        if not broken:
            return data_list
        owner = f'{type(self).__name__}({getattr(self, "ann_file", "")})'
        if self.on_broken_media == 'raise':
            raise BrokenMediaError(
                f"{owner}: {len(broken)} of {len(set(paths))} media files cannot be decoded. Fix or "
                f"remove them, or set the dataset's on_broken_media='exclude' (tools/test.py "
                f"--on-broken-media exclude) to evaluate without them:", broken)
        self.excluded_media = broken
        bad = {path for path, _ in broken}
        kept = [info for info in data_list if info[self.media_path_key] not in bad]
        print_log(f'{owner}: excluded {len(broken)} broken media files ({len(data_list) - len(kept)} of '
                  f'{len(data_list)} items):\n{format_broken(broken)}', logger='current',
                  level=logging.WARNING)
        return kept

    def __getitem__(self, idx: int) -> Any:
        """``BaseDataset.__getitem__``; under ``'skip'``, samples whose media fail are replaced by random
        others and the failures are attached to the returned sample (:func:`attach_skipped`)."""
        if self.on_broken_media != 'skip':
            return super().__getitem__(idx)
        if not self._fully_initialized:
            self.full_init()
        skipped: List[Dict[str, str]] = []
        for _ in range(self.max_broken_retries + 1):
            try:
                data = self.prepare_data(idx)
            except self.media_errors as err:
                skipped.append(dict(path=getattr(err, 'path', '?'),
                                    reason=getattr(err, 'reason', str(err))))
                data = None
            if data is not None:
                return attach_skipped(data, skipped) if skipped else data
            idx = self._rand_another()  # None is BaseDataset's own "fetch another" signal
        raise BrokenMediaError(
            f'{type(self).__name__}: {self.max_broken_retries + 1} samples in a row could not be loaded '
            f'(max_broken_retries={self.max_broken_retries}); is the media root right?',
            [(record['path'], record['reason']) for record in skipped])
