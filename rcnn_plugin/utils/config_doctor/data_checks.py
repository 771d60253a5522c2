"""Checks of the learning rate, the evaluators and the data after
filtering."""
import os.path as osp
from typing import Any, Iterator, List, Optional, Tuple

from rcnn_plugin.datasets import (
    class_instance_counts,
    count_ignored_instances,
)

from .context import (
    DoctorContext,
    dataset_classes,
    iter_class_cfgs,
    iter_dataset_cfgs,
)
from .finding import Finding
from .model_checks import class_heads

__all__ = [
    'check_empty_data', 'check_evaluator', 'check_ignored_negatives',
    'check_learning_rate'
]

_MASK_METRICS = ('segm', )


def _lr(cfg: Any) -> Tuple[Optional[float], str]:
    optim = cfg.get('optim_wrapper') or {}
    optimizer = optim.get('optimizer') or {}
    return optimizer.get('lr'), 'optim_wrapper.optimizer.lr'


def check_learning_rate(ctx: DoctorContext) -> List[Finding]:
    """Compare ``auto_scale_lr.base_batch_size`` (the batch the lr was set
    for) with the real total batch, ``world_size x batch_size``.

    Args:
        ctx (DoctorContext): The config and world size.

    Returns:
        list[Finding]: A warning with the linearly scaled lr when the
        batches differ and auto scaling is off; an info when it is on.
    """
    scale = ctx.cfg.get('auto_scale_lr') or {}
    loader = ctx.cfg.get('train_dataloader') or {}
    lr, lr_key = _lr(ctx.cfg)
    base = scale.get('base_batch_size')
    if not base or lr is None or 'batch_size' not in loader:
        return []
    real = ctx.world_size * int(loader['batch_size'])
    if real == base:
        return []
    scaled = lr * real / base
    how = (f'world size {ctx.world_size} x train_dataloader.batch_size '
           f'{loader["batch_size"]}')
    if scale.get('enable', False):
        return [Finding(
            'learning_rate', 'info',
            f'auto_scale_lr is on: lr {lr:g} set for batch {base} becomes '
            f'{scaled:g} for the real batch {real} ({how})',
            'nothing to do', 'auto_scale_lr.enable')]
    return [Finding(
        'learning_rate', 'warning',
        f'{lr_key} = {lr:g} is set for auto_scale_lr.base_batch_size = '
        f'{base} but the real batch is {real} ({how}); the linear scaling '
        f'rule gives lr = {scaled:g}',
        f'set {lr_key}={scaled:g} (or auto_scale_lr.enable=True, or '
        f'tools/train.py --auto-scale-lr), or set '
        f'auto_scale_lr.base_batch_size={real} if {lr:g} is right',
        lr_key)]


def _evaluators(cfg: Any, split: str) -> Iterator[Tuple[dict, str]]:
    ev = cfg.get(f'{split}_evaluator')
    if isinstance(ev, dict):
        yield ev, f'{split}_evaluator'
    elif isinstance(ev, (list, tuple)):
        for i, item in enumerate(ev):
            if isinstance(item, dict):
                yield item, f'{split}_evaluator[{i}]'


def _dataset_ann_file(ds_cfg: dict) -> Optional[str]:
    """The annotation file a dataset reads, joined with ``data_root`` as
    mmengine's ``BaseDataset`` does."""
    ann = ds_cfg.get('ann_file')
    if not ann:
        return None
    root = ds_cfg.get('data_root')
    return ann if osp.isabs(ann) or not root else osp.join(root, ann)


def _metrics(ev: dict) -> List[str]:
    metric = ev.get('metric', [])
    return [metric] if isinstance(metric, str) else list(metric)


def _check_one_evaluator(ctx: DoctorContext, ev: dict, key: str,
                         split: str) -> List[Finding]:
    findings = []
    leaves = list(iter_dataset_cfgs(ctx.dataset_cfg(split),
                                    f'{split}_dataloader.dataset'))
    ev_ann = ev.get('ann_file')
    if ev_ann and len(leaves) == 1:
        ds_cfg, ds_key = leaves[0]
        ds_ann = _dataset_ann_file(ds_cfg)
        if ds_ann and ds_ann.endswith('.json') and \
                osp.realpath(ev_ann) != osp.realpath(ds_ann):
            findings.append(Finding(
                'evaluator', 'error',
                f'{key}.ann_file is {ev_ann} but {ds_key} reads {ds_ann}: '
                'predictions would be scored against other annotations',
                f'set {key}.ann_file={ds_ann!r}', f'{key}.ann_file'))
    has_mask = isinstance((ctx.cfg.model.get('roi_head') or {}).get(
        'mask_head'), dict) or isinstance(ctx.cfg.model.get('mask_head'),
                                          dict)
    for metric in _metrics(ev):
        if metric in _MASK_METRICS and not has_mask:
            findings.append(Finding(
                'evaluator', 'error',
                f'{key}.metric asks for {metric!r} but the model has no '
                'mask head: evaluation fails after the first epoch',
                f"remove {metric!r} from {key}.metric (keep 'bbox')",
                f'{key}.metric'))
    classes = [dataset_classes(c) for c, _ in iter_class_cfgs(
        ctx.dataset_cfg(split), f'{split}_dataloader.dataset')]
    if ev.get('classwise') and classes and classes[0] and \
            len(classes[0]) == 1:
        findings.append(Finding(
            'evaluator', 'info',
            f'{key}.classwise is on for a single-class dataset: the '
            'per-class table repeats the overall numbers',
            f'set {key}.classwise=False', f'{key}.classwise'))
    return findings


def check_evaluator(ctx: DoctorContext) -> List[Finding]:
    """Check evaluators against their dataloaders and the model.

    Args:
        ctx (DoctorContext): The config.

    Returns:
        list[Finding]: Errors for an evaluator ``ann_file`` that is not
        its dataset's and for mask metrics without a mask head; an info
        for a classwise report on a single class.
    """
    findings = []
    for split in ('val', 'test'):
        for ev, key in _evaluators(ctx.cfg, split):
            findings += _check_one_evaluator(ctx, ev, key, split)
    return findings


def check_empty_data(ctx: DoctorContext) -> List[Finding]:
    """Build the datasets and look for empty ones and unseen classes.

    Args:
        ctx (DoctorContext): The config (datasets are built on demand).

    Returns:
        list[Finding]: An error per dataset that is empty after
        ``filter_cfg`` and per class with no training instance.
    """
    findings = []
    for split in ctx.splits():
        dataset = ctx.dataset(split)
        if dataset is None:
            continue
        key = f'{split}_dataloader.dataset'
        if len(dataset) == 0:
            findings.append(Finding(
                'empty_data', 'error',
                f'{key} has 0 images after filtering: check ann_file, '
                'data_root, data_prefix, metainfo classes (they must match '
                'the annotation names) and filter_cfg',
                f'fix {key}.ann_file / {key}.metainfo or relax '
                f'{key}.filter_cfg', key))
            continue
        if split != 'train':
            continue
        counts = class_instance_counts(dataset)
        unseen = [name for name, n in counts.items() if n == 0]
        if unseen:
            heads = ', '.join(k for k, _ in class_heads(ctx.cfg.model))
            findings.append(Finding(
                'empty_data', 'error',
                f'{key} has no instance of class(es) {unseen} (of '
                f'{len(dataset)} images): the model cannot learn them; a '
                'class name that differs from the annotations is dropped '
                'silently',
                f'spell {key}.metainfo.classes as in the annotations, or '
                f'remove the class(es) there and in {heads}',
                f'{key}.metainfo.classes'))
    return findings


def _blind_assigners(train_cfg: Any) -> List[str]:
    """Keys of MaxIoU assigners that sample ignored boxes as background."""
    keys = []
    for stage in ('rpn', 'rcnn'):
        stages = (train_cfg or {}).get(stage) or []
        many = isinstance(stages, (list, tuple))  # cascade: one per stage
        for i, stage_cfg in enumerate(stages if many else [stages]):
            assigner = stage_cfg.get('assigner') or {}
            if assigner.get('type') != 'MaxIoUAssigner':
                continue
            if assigner.get('ignore_iof_thr', -1) <= 0:
                index = f'[{i}]' if many else ''
                keys.append(f'model.train_cfg.{stage}{index}.assigner')
    return keys


def check_ignored_negatives(ctx: DoctorContext) -> List[Finding]:
    """Warn when ignored instances outnumber the annotated ones in the
    training set while the assigners treat them as background.

    With ``ignore_iof_thr <= 0`` (mmdet's default) an ignored box is not
    excluded from the negatives: RoIs on it are sampled as background. That
    is harmless for a few crowd or difficult boxes, but a K-shot split keeps
    every unpicked instance as ignored: on dense images these outnumber the
    K positives and teach the model that the objects are background.

    Args:
        ctx (DoctorContext): The config (the training set is built).

    Returns:
        list[Finding]: A warning naming the assigners to change.
    """
    blind = _blind_assigners(ctx.cfg.model.get('train_cfg'))
    dataset = ctx.dataset('train') if blind else None
    if dataset is None:
        return []
    ignored = count_ignored_instances(dataset)
    kept = sum(class_instance_counts(dataset).values())
    if ignored <= kept:
        return []
    return [Finding(
        'ignored_negatives', 'warning',
        f'train_dataloader.dataset holds {ignored} ignored instances '
        f'against {kept} annotated ones, and {", ".join(blind)} keep '
        'ignore_iof_thr <= 0: RoIs on the ignored objects are sampled as '
        'background, which teaches the model that they are background (a '
        'K-shot split keeps its unpicked instances as ignored)',
        f'set ignore_iof_thr=0.5 in {" and ".join(blind)} (as '
        'configs/bccd_fewshot does), or drop the ignored instances if they '
        'really are background', blind[0] + '.ignore_iof_thr')]
