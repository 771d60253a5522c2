"""Checks of the learning rate and the data after filtering."""
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config

from rcnn_plugin.datasets import (
    class_instance_counts,
    count_ignored_instances,
)
from rcnn_plugin.utils.config_types import cfg_type_name

from .context import DoctorContext, detector_cfg
from .finding import Finding
from .model_checks import class_heads

__all__ = [
    'check_empty_data', 'check_ignored_negatives', 'check_learning_rate',
    'linear_scaling_reference'
]


def _lr(cfg: Any) -> Tuple[Optional[float], str]:
    optim = cfg.get('optim_wrapper') or {}
    optimizer = optim.get('optimizer') or {}
    return optimizer.get('lr'), 'optim_wrapper.optimizer.lr'


def _furthest_reference(filename: str) -> Optional[Tuple[str, str]]:
    """Walk the ``_base_`` files of ``filename`` (``pkg::`` bases through
    mmengine's package scope) and return ``(path, name)`` of the deepest
    one whose merged config sets both the lr and the base batch."""
    depth: Dict[str, Tuple[int, str]] = {}
    stack = [(filename, 0)]
    while stack:
        path, level = stack.pop()
        try:
            bases = Config._get_base_files(path)
        except Exception:  # an unreadable file is not our concern here
            continue
        for base in bases:
            try:
                base_path, scope = Config._get_cfg_path(base, path)
            except (ImportError, OSError, ValueError, KeyError):
                continue
            base_path = osp.realpath(base_path)
            if osp.isfile(base_path) and level < 32 and \
                    depth.get(base_path, (-1, ))[0] < level + 1:
                depth[base_path] = (level + 1, _config_name(base_path))
                stack.append((base_path, level + 1))
    for path, (_, name) in sorted(depth.items(), key=lambda x: -x[1][0]):
        cfg = Config.fromfile(path, import_custom_modules=False)
        if _lr(cfg)[0] and (cfg.get('auto_scale_lr') or {}).get(
                'base_batch_size'):
            return path, name
    return None


def _config_name(path: str) -> str:
    """``mmdet::_base_/x.py`` for a file of an installed package's configs,
    else the path relative to the working directory (if under it)."""
    head, sep, tail = path.partition(f'{osp.sep}.mim{osp.sep}configs'
                                     f'{osp.sep}')
    if sep:
        return f'{osp.basename(head)}::{tail}'
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


_REFERENCES: Dict[Tuple[str, float], Optional[dict]] = {}


def linear_scaling_reference(cfg: Any) -> Optional[dict]:
    """The lr and batch that the config's furthest base was tuned for.

    Walks the ``_base_`` inheritance of ``cfg.filename`` to the furthest
    ancestor whose (merged) config sets both
    ``optim_wrapper.optimizer.lr`` and ``auto_scale_lr.base_batch_size``,
    e.g. mmdet's ``_base_/schedules/schedule_1x.py`` (SGD lr 0.02 for
    batch 16). The config itself does not count. Results are cached per
    file and modification time.

    Args:
        cfg (Any): A config loaded with ``Config.fromfile``.

    Returns:
        dict, optional: ``name`` (e.g.
        ``'mmdet::_base_/schedules/schedule_1x.py'``), ``path``, ``lr`` and
        ``base_batch_size``; None if there is no such ancestor or the
        config has no file.
    """
    filename = getattr(cfg, 'filename', None)
    if not filename or not osp.isfile(filename):
        return None
    key = (osp.realpath(filename), osp.getmtime(filename))
    if key not in _REFERENCES:
        found = _furthest_reference(key[0])
        ref = None
        if found:
            base = Config.fromfile(found[0], import_custom_modules=False)
            ref = dict(name=found[1], path=found[0], lr=_lr(base)[0],
                       base_batch_size=base.auto_scale_lr.base_batch_size)
        _REFERENCES[key] = ref
    return _REFERENCES[key]


def check_learning_rate(ctx: DoctorContext) -> List[Finding]:
    """Check the lr against the batch it is used with.

    Two checks: ``auto_scale_lr.base_batch_size`` (the batch the lr was
    set for) against the real total batch, ``world_size x batch_size``;
    and the lr per image against that of the furthest base config that
    sets both lr and base batch (see :func:`linear_scaling_reference`).

    Args:
        ctx (DoctorContext): The config and world size.

    Returns:
        list[Finding]: A warning with the linearly scaled lr when the
        batches differ and auto scaling is off (an info when it is on);
        a warning when the lr per image is more than 10 % above that of
        the furthest base.
    """
    loader = ctx.cfg.get('train_dataloader') or {}
    lr = _lr(ctx.cfg)[0]
    if lr is None or 'batch_size' not in loader:
        return []
    real = ctx.world_size * int(loader['batch_size'])
    return _base_batch_findings(ctx, lr, real) + _reference_findings(
        ctx, lr, real)


def _how(ctx: DoctorContext) -> str:
    loader = ctx.cfg.get('train_dataloader') or {}
    return (f'world size {ctx.world_size} x train_dataloader.batch_size '
            f'{loader.get("batch_size")}')


def _base_batch_findings(ctx: DoctorContext, lr: float,
                         real: int) -> List[Finding]:
    scale = ctx.cfg.get('auto_scale_lr') or {}
    lr_key = _lr(ctx.cfg)[1]
    base = scale.get('base_batch_size')
    if not base or real == base:
        return []
    scaled = lr * real / base
    if scale.get('enable', False):
        return [Finding(
            'learning_rate', 'info',
            f'auto_scale_lr is on: lr {lr:g} set for batch {base} becomes '
            f'{scaled:g} for the real batch {real} ({_how(ctx)})',
            'nothing to do', 'auto_scale_lr.enable')]
    return [Finding(
        'learning_rate', 'warning',
        f'{lr_key} = {lr:g} is set for auto_scale_lr.base_batch_size = '
        f'{base} but the real batch is {real} ({_how(ctx)}); the linear '
        f'scaling rule gives lr = {scaled:g}',
        f'set {lr_key}={scaled:g} (or auto_scale_lr.enable=True, or '
        f'tools/train.py --auto-scale-lr), or set '
        f'auto_scale_lr.base_batch_size={real} if {lr:g} is right',
        lr_key)]


def _reference_findings(ctx: DoctorContext, lr: float,
                        real: int) -> List[Finding]:
    ref = linear_scaling_reference(ctx.cfg)
    if ref is None:
        return []
    lr_key = _lr(ctx.cfg)[1]
    scale = ctx.cfg.get('auto_scale_lr') or {}
    base = scale.get('base_batch_size')
    auto = bool(scale.get('enable', False) and base)
    used = lr * real / base if auto else lr  # the lr training will use
    scaled = ref['lr'] * real / ref['base_batch_size']
    ratio = used / scaled
    if ratio <= 1.1:
        return []
    what = (f'{lr_key} = {lr:g} (auto-scaled to {used:g})' if auto else
            f'{lr_key} = {lr:g}')
    fix = (f'set {lr_key}={ref["lr"] * base / ref["base_batch_size"]:g} '
           f'(auto_scale_lr then gives {scaled:g})' if auto else
           f'set {lr_key}={scaled:g}')
    return [Finding(
        'learning_rate', 'warning',
        f'{what} at the real batch {real} ({_how(ctx)}) is {ratio:.1f}x '
        f'the linear scaling of {ref["name"]} (lr {ref["lr"]:g} at batch '
        f'{ref["base_batch_size"]}), which gives lr = {scaled:g}; a '
        'higher lr per image can diverge',
        f'{fix}, or keep {used:g} if a run at this batch showed it is '
        'stable', lr_key)]


def check_empty_data(ctx: DoctorContext) -> List[Finding]:
    """Build the datasets and look for empty ones and unseen classes.

    Args:
        ctx (DoctorContext): The config (datasets are built on demand).

    A training dataset whose ``unlabelled`` attribute is true (the target
    images of domain adaptation, withheld labels by design) is not counted
    per class; an info says so.

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
        if getattr(dataset, 'unlabelled', False):
            findings.append(Finding(
                'empty_data', 'info',
                f'{key} is unlabelled by design ({type(dataset).__name__}, '
                f'{len(dataset)} images): its classes are not counted',
                'nothing to fix', key))
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


def _blind_assigners(train_cfg: Any, prefix: str) -> List[str]:
    """Keys of MaxIoU assigners that sample ignored boxes as background."""
    keys = []
    for stage in ('rpn', 'rcnn'):
        stages = (train_cfg or {}).get(stage) or []
        many = isinstance(stages, (list, tuple))  # cascade: one per stage
        for i, stage_cfg in enumerate(stages if many else [stages]):
            assigner = stage_cfg.get('assigner') or {}
            if cfg_type_name(assigner) != 'MaxIoUAssigner':
                continue
            if assigner.get('ignore_iof_thr', -1) <= 0:
                index = f'[{i}]' if many else ''
                keys.append(f'{prefix}.train_cfg.{stage}{index}.assigner')
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
    prefix, detector = detector_cfg(ctx.cfg.model)
    blind = _blind_assigners(detector.get('train_cfg'), prefix)
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
