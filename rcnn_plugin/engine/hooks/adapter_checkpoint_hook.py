"""Save an adapter-only checkpoint next to every regular checkpoint."""
import os
import os.path as osp
from typing import Dict, Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process, master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import save_checkpoint

from rcnn_plugin.models.peft import save_adapter


@HOOKS.register_module()
class AdapterCheckpointHook(Hook):
    """Write ``adapter_<name>.pth`` beside each checkpoint the Runner saves.

    ``epoch_8.pth`` gets ``adapter_epoch_8.pth`` in the same folder (and
    ``best_coco_bbox_mAP_epoch_8.pth`` gets ``adapter_best_..._epoch_8.pth``,
    the previous best's adapter removed with it), holding
    only the trained tensors (see :func:`~rcnn_plugin.models.peft.
    save_adapter`), read from that checkpoint (so with an ``EMAHook``
    both hold the averaged weights). With ``save_base=True``, the weights
    the training starts from (after init and ``load_from``) are also
    saved once, as ``base_weights.pth`` (kept when a run resumes): the
    base that adapters load on top of when no model-zoo checkpoint is the
    base (e.g. random heads on an ImageNet backbone). With the checkpoint
    hook's ``max_keep_ckpts``, the adapters of the checkpoints it removes
    are removed too.

    Args:
        save_base (bool): Save ``base_weights.pth`` before training.
            Defaults to False.
        prefix (str): Prefix of the adapter file names.
            Defaults to 'adapter_'.
    """

    priority = 'LOW'

    def __init__(self, save_base: bool = False,
                 prefix: str = 'adapter_') -> None:
        if not prefix:
            raise ValueError('prefix must be non-empty, or adapters would '
                             'overwrite the regular checkpoints')
        self.save_base = save_base
        self.prefix = prefix
        self._best: Dict[str, str] = {}  # best_ckpt* info -> path seen
        self._written: set = set()  # adapter files this run wrote
        # checkpoint names a resumed run had kept: their adapters are this
        # run's too (a new process starts with an empty ``_written``)
        self._inherited: set = set()

    @staticmethod
    def _best_paths(runner) -> Dict[str, str]:
        """CheckpointHook's best checkpoint paths (``best_ckpt`` or
        ``best_ckpt_<key>`` in the message hub)."""
        hub = getattr(runner, 'message_hub', None)  # None: a bare runner
        info = hub.runtime_info if hub is not None else {}
        return {k: v for k, v in info.items()
                if k.startswith('best_ckpt') and isinstance(v, str)}

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                return hook
        return None

    @master_only
    def before_train(self, runner) -> None:
        """Save ``base_weights.pth`` in the work dir if asked to."""
        self._best = self._best_paths(runner)  # a resumed run's bests
        hub = getattr(runner, 'message_hub', None)
        kept = hub.runtime_info.get('keep_ckpt_ids') if hub else None
        hook = self._checkpoint_hook(runner)
        if kept and hook is not None:  # read before CheckpointHook trims
            self._inherited = {hook.filename_tmpl.format(i) for i in kept}
        if not self.save_base:
            return
        path = osp.join(runner.work_dir, 'base_weights.pth')
        if osp.exists(path) and runner.cfg.get('resume', False):
            # Resumed: the model holds trained weights, keep the true base.
            runner.logger.info(f'Keeping the existing base weights {path}')
        else:
            save_checkpoint(
                dict(meta=dict(note='weights before PEFT training'),
                     state_dict=self._model(runner).state_dict()), path)
            runner.logger.info(f'Saved the base weights to {path}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the adapter that matches ``checkpoint``.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved (for its meta).
        """
        meta = checkpoint.get('meta', {})
        hook = self._checkpoint_hook(runner)
        by_epoch = hook.by_epoch if hook is not None else True
        tmpl = hook.filename_tmpl if hook is not None else (
            'epoch_{}.pth' if by_epoch else 'iter_{}.pth')
        out_dir = (hook.out_dir if hook is not None
                   and isinstance(hook.out_dir, str) else runner.work_dir)
        step = meta.get('epoch') if by_epoch else meta.get('iter')
        name = tmpl.format(step)
        # CheckpointHook names a new best in the message hub just before
        # saving it: this save is that best checkpoint
        best = {k: v for k, v in self._best_paths(runner).items()
                if self._best.get(k) != v}
        for key, best_path in best.items():
            name = osp.basename(best_path)
            if key in self._best:  # the previous best's adapter goes too
                self._remove(osp.join(out_dir, self.prefix + osp.basename(
                    self._best[key])))
            self._best[key] = best_path
        self._remove_orphans(hook, out_dir, keep=name)
        path = osp.join(out_dir, self.prefix + name)
        self._written.add(path)
        # dataset_meta: the class names, which the base checkpoint may not
        # record (or records for another domain's data)
        extra = {k: meta[k] for k in ('epoch', 'iter', 'cfg', 'dataset_meta')
                 if k in meta}
        # The base checkpoint the adapter loads on (its hash is recorded too)
        base = ('base_weights.pth' if self.save_base else
                runner.cfg.get('load_from'))
        if base:
            extra['base_name'] = osp.basename(base)
        # From the checkpoint's own state dict: an EMAHook (priority
        # NORMAL, before this one) has put the averaged weights there.
        numel = save_adapter(self._model(runner), path, extra,
                             checkpoint.get('state_dict'))
        runner.logger.info(
            f'Saved the adapter ({numel:,} values, '
            f'{osp.getsize(path) / 2**20:.2f} MiB) to {path}')

    @staticmethod
    def _remove(path: str) -> None:
        if is_main_process() and osp.isfile(path):
            os.remove(path)

    def _remove_orphans(self, hook: Optional[CheckpointHook], out_dir: str,
                        keep: str) -> None:
        """Remove the adapters this run wrote whose regular checkpoint
        ``max_keep_ckpts`` has since removed; ``keep`` is being saved.
        Adapters of other runs (kept on purpose) are never touched."""
        if hook is None or not getattr(hook, 'max_keep_ckpts', -1) > 0:
            return
        for name in self._inherited:
            path = osp.join(out_dir, self.prefix + name)
            if osp.isfile(path):
                self._written.add(path)
        self._inherited = set()
        for path in sorted(self._written):
            name = osp.basename(path)[len(self.prefix):]
            if name != keep and not name.startswith('best_') and \
                    not osp.exists(osp.join(out_dir, name)):
                self._remove(path)
                self._written.discard(path)

    @master_only
    def after_train(self, runner) -> None:
        """Remove the adapters of checkpoints removed after the last save.

        Args:
            runner (Runner): The runner.
        """
        hook = self._checkpoint_hook(runner)
        if hook is not None:
            out_dir = (hook.out_dir if isinstance(hook.out_dir, str)
                       else runner.work_dir)
            self._remove_orphans(hook, out_dir, keep='')
