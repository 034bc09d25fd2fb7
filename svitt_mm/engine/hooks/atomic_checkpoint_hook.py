"""Checkpoints that a crash cannot leave half-written.

MMEngine's ``CheckpointHook`` writes ``epoch_N.pth`` and the ``last_checkpoint`` pointer in place, and
deletes the oldest kept checkpoint *before* writing the new one. A process killed at the wrong moment
leaves a truncated checkpoint, an empty pointer, or a pointer to a deleted file, and ``--resume`` then
fails or silently starts from scratch. :class:`AtomicCheckpointHook` writes each checkpoint under a
temporary name in the same directory, fsyncs it and renames it into place, then replaces the pointer
the same way, and only then deletes outdated checkpoints.
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
from typing import Optional

from mmengine.dist import barrier, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from svitt_mm.registry import HOOKS


def _fsync_path(path: str) -> None:
    """Flush a file's (or a directory's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(tmp_path: str, path: str) -> None:
    """Move the finished ``tmp_path`` (a file, or a directory of shards) to ``path`` in one step.

    Both must be in the same directory (``os.replace`` is atomic only within one file system). The
    data is fsynced before the rename and the directory entry after it, so after a power loss ``path``
    holds either its old content or the complete new one.
    """
    if osp.isdir(tmp_path):
        for root, _, files in os.walk(tmp_path):
            for name in files:
                _fsync_path(osp.join(root, name))
        if osp.isdir(path):  # os.replace cannot overwrite a non-empty directory
            shutil.rmtree(path)
    else:
        _fsync_path(tmp_path)
    os.replace(tmp_path, path)
    _fsync_path(osp.dirname(osp.abspath(path)))


def write_text_atomically(path: str, text: str) -> None:
    """Replace the text file ``path`` with ``text`` so that readers see the old or the new content,
    never an empty or partial file."""
    tmp_path = osp.join(osp.dirname(osp.abspath(path)), f'.{osp.basename(path)}.tmp')
    with open(tmp_path, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    replace_atomically(tmp_path, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose checkpoint files and ``last_checkpoint`` pointer are
    replaced atomically, and which deletes outdated checkpoints only after the new one is in place.

    Only local directories get the atomic treatment; other storage backends fall back to
    ``CheckpointHook``'s behaviour. Best-checkpoint saving (``save_best``) is ``CheckpointHook``'s.
    """

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not isinstance(self.file_backend, LocalBackend):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        outdated: Optional[int] = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_name = f'.{filename}.tmp'
        runner.save_checkpoint(self.out_dir, tmp_name, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        barrier()  # sharded strategies (DeepSpeed) write from every rank
        if not is_main_process():
            return
        replace_atomically(osp.join(self.out_dir, tmp_name), self.last_ckpt)
        write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is not None:
            old = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isdir(old):
                shutil.rmtree(old)
            elif osp.isfile(old):
                os.remove(old)
