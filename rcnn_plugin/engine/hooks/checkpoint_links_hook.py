"""``best.pth`` and ``last.pth`` in the work dir, as Ultralytics has them."""
import logging
import os
import os.path as osp
import shutil
from typing import Dict, Optional, Union

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

__all__ = ['CheckpointLinksHook', 'link_or_copy']


def link_or_copy(target: str, link: str) -> str:
    """Point ``link`` at ``target`` with a relative symlink, else a copy.

    The link is made under a temporary name and moved over ``link``, so a
    reader never finds it missing. Where symlinks fail (some Windows and
    network file systems) the file is copied.

    Args:
        target (str): The existing file.
        link (str): The link path.

    Returns:
        str: ``'link'`` or ``'copy'``.
    """
    if not osp.isfile(target):
        raise FileNotFoundError(f'cannot link {link} to {target}: no such '
                                'file')
    tmp = osp.join(osp.dirname(link), f'.{osp.basename(link)}.tmp')
    if osp.lexists(tmp):
        os.remove(tmp)
    try:
        os.symlink(osp.relpath(target, osp.dirname(osp.abspath(link))), tmp)
        how = 'link'
    except (OSError, NotImplementedError):
        shutil.copyfile(target, tmp)
        how = 'copy'
    os.replace(tmp, link)
    return how


@HOOKS.register_module()
class CheckpointLinksHook(Hook):
    """Keep ``best.pth`` and ``last.pth`` pointing at the checkpoints.

    After each training epoch, evaluation and at the end (and after a
    training iteration whose ``CheckpointHook`` saved a new checkpoint: an
    iteration-based loop saves there), reads the paths
    mmengine's ``CheckpointHook`` keeps in the message hub: ``last_ckpt``
    (the newest checkpoint) and ``best_ckpt`` (``save_best``; with a list
    of keys, ``best_ckpt_<first key>``), and points
    ``<work_dir>/last.pth`` / ``best.pth`` at them with relative symlinks
    (copies where symlinks fail, only when the target or its contents
    changed). Without
    ``save_best`` there is no ``best.pth``. The message hub is resumed with
    the checkpoint, so the links continue after ``--resume``.

    Args:
        best (str): Name of the best link. Defaults to 'best.pth'.
        last (str): Name of the last link. Defaults to 'last.pth'.
    """

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW)

    def __init__(self, best: str = 'best.pth',
                 last: str = 'last.pth') -> None:
        for name in (best, last):
            if osp.basename(name) != name or not name:
                raise ValueError(f'link names are file names in the work '
                                 f'dir, got {name!r}')
        self.names = dict(best=best, last=last)
        self._targets: Dict[str, tuple] = {}
        self._warned = False
        self._last_ckpt: Optional[str] = None

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[Union[dict, tuple, list]] = None,
                         outputs: Optional[dict] = None) -> None:
        """Update the links when ``last_ckpt`` changed (a string compare
        otherwise): ``max_keep_ckpts`` may have removed the linked file.

        Args:
            runner (Runner): The training runner.
            batch_idx (int): Index of the batch.
            data_batch (dict | tuple | list, optional): The batch (unused).
                Defaults to None.
            outputs (dict, optional): The outputs (unused). Defaults to None.
        """
        if runner.message_hub.get_info('last_ckpt') != self._last_ckpt:
            self.update(runner)

    def after_train_epoch(self, runner) -> None:
        """Update the links.

        Args:
            runner (Runner): The training runner.
        """
        self.update(runner)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Update the links (``save_best`` may have saved).

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Metrics (unused). Defaults to None.
        """
        self.update(runner)

    def after_val(self, runner) -> None:
        """Update the links (``ResumableEarlyStoppingHook`` may have saved
        the epoch's checkpoint again).

        Args:
            runner (Runner): The runner.
        """
        self.update(runner)

    def after_train(self, runner) -> None:
        """Update the links once more.

        Args:
            runner (Runner): The training runner.
        """
        self.update(runner)

    def targets(self, runner) -> Dict[str, str]:
        """The checkpoints the links should point at.

        Args:
            runner (Runner): The runner.

        Returns:
            dict[str, str]: ``'best'`` / ``'last'`` to existing files.
        """
        hub = runner.message_hub
        found = dict(last=hub.get_info('last_ckpt'),
                     best=hub.get_info('best_ckpt'))
        if found['best'] is None:
            keys = [k for k in hub.runtime_info if k.startswith(
                'best_ckpt_')]
            found['best'] = hub.get_info(keys[0]) if keys else None
        return {k: v for k, v in found.items()
                if isinstance(v, str) and osp.isfile(v)}

    def update(self, runner) -> Dict[str, str]:
        """Point each link at its checkpoint if it changed (main process).

        Args:
            runner (Runner): The runner.

        Returns:
            dict[str, str]: The links made now, name to ``link`` / ``copy``.
        """
        made: Dict[str, str] = {}
        self._last_ckpt = runner.message_hub.get_info('last_ckpt')
        if not is_main_process():
            return made
        for kind, target in self.targets(runner).items():
            link = osp.join(runner.work_dir, self.names[kind])
            # The same path can be saved again (save_best and early stopping
            # re-save the epoch's checkpoint after validation): a copy must
            # follow it, so the file's time and size are part of the key.
            stat = os.stat(target)
            key = (target, stat.st_mtime_ns, stat.st_size)
            if self._targets.get(kind) == key and osp.exists(link):
                continue
            made[link] = link_or_copy(target, link)
            self._targets[kind] = key
            if made[link] == 'copy' and not self._warned:
                self._warned = True
                print_log('CheckpointLinksHook: symlinks fail here, so '
                          f'{link} is a copy (rewritten when it changes).',
                          logger='current', level=logging.WARNING)
        return made
