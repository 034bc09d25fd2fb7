"""Report the training samples a dataset skipped because their media could not be decoded."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Set, Tuple

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook

from svitt_mm.datasets.broken_media import BrokenMediaError, skipped_records
from svitt_mm.registry import HOOKS
from svitt_mm.utils.arg_checks import ArgumentError


@HOOKS.register_module()
class BrokenMediaHook(Hook):
    """Log broken media files skipped under ``on_broken_media='skip'`` and stop when there are too many.

    Datasets with :class:`~svitt_mm.datasets.BrokenMediaMixin` put a ``skipped`` list of ``{'path',
    'reason'}`` records into the data samples they return (see
    :func:`~svitt_mm.datasets.broken_media.attach_skipped`). This hook reads them from each training
    batch, logs every broken file once (with its reason), logs the epoch's and the run's skip counts
    after each epoch (summed over ranks), and raises :class:`BrokenMediaError` listing examples when
    more than ``max_skip_fraction`` of the epoch's sample fetches failed. The fraction is
    ``skipped / (samples delivered + skipped)``, i.e. an estimate of the share of broken samples; it is
    also checked during the epoch, stopping as soon as this rank alone has skipped so many that the
    epoch must exceed it.

    Args:
        max_skip_fraction: largest tolerated share of failed fetches per epoch, in ``[0, 1)``.
        max_examples: broken files listed in the error.
    """

    priority = 'NORMAL'

    def __init__(self, max_skip_fraction: float = 0.05, max_examples: int = 10) -> None:
        if not 0.0 <= max_skip_fraction < 1.0:
            raise ArgumentError(f'BrokenMediaHook: max_skip_fraction must be in [0, 1), got '
                                f'{max_skip_fraction!r}')
        self.max_skip_fraction = max_skip_fraction
        self.max_examples = max_examples
        self.reported: Set[str] = set()
        self.total_skipped = 0
        self._epoch_records: List[Tuple[str, str]] = []
        self._epoch_delivered = 0

    def before_train_epoch(self, runner) -> None:
        self._epoch_records, self._epoch_delivered = [], 0

    def _report(self, runner, records: Sequence[Tuple[str, str]]) -> None:
        for path, reason in records:
            if path not in self.reported:
                self.reported.add(path)
                runner.logger.warning(f'skipped broken media file (replaced by a random other sample): '
                                      f'{path}: {reason}')

    def _fail(self, runner, skipped: int, fetched: int, records: Sequence[Tuple[str, str]]) -> None:
        examples = list(dict(records).items())[:self.max_examples]
        raise BrokenMediaError(
            f'BrokenMediaHook: {skipped} of {fetched} sample fetches in epoch {runner.epoch + 1} '
            f'({100.0 * skipped / fetched:.1f}%) failed, more than max_skip_fraction='
            f'{self.max_skip_fraction:g}. Fix or remove the broken files (examples below), or raise '
            f'max_skip_fraction:', examples)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[Dict] = None,
                         outputs: Optional[Dict] = None) -> None:
        samples = (data_batch or {}).get('data_samples') or []
        records = [(r['path'], r['reason']) for sample in samples for r in skipped_records(sample)]
        self._epoch_delivered += len(samples)
        if not records:
            return
        self._epoch_records.extend(records)
        self._report(runner, records)
        # This rank's skips alone exceed the fraction for an epoch of len(dataset) samples:
        # S > f * (N + S)  <=>  S > f * N / (1 - f).
        epoch_size = len(runner.train_dataloader.dataset)
        skipped = len(self._epoch_records)
        if skipped > self.max_skip_fraction * epoch_size / (1.0 - self.max_skip_fraction):
            self._fail(runner, skipped, max(self._epoch_delivered, epoch_size) + skipped,
                       self._epoch_records)

    def after_train_epoch(self, runner) -> None:
        gathered = all_gather_object((self._epoch_records, self._epoch_delivered))
        records = [record for part, _ in gathered for record in part]
        delivered = sum(count for _, count in gathered)
        if get_dist_info()[0] == 0:
            self._report(runner, records)  # other ranks' files; rank 0 is the one that logs
        skipped = len(records)
        self.total_skipped += skipped
        if skipped or self.total_skipped:
            runner.logger.info(
                f'epoch {runner.epoch + 1}: skipped {skipped} broken samples of {delivered + skipped} '
                f'fetched; {self.total_skipped} skipped in this run, {len(self.reported)} distinct broken '
                f'files')
        if skipped and skipped > self.max_skip_fraction * (delivered + skipped):
            self._fail(runner, skipped, delivered + skipped, records)
