"""Checks of the model wiring: feature strides and class counts.

A backbone that feeds the FPN at another stride than the anchor generator
and RoI extractor assume trains without an error and ends near 0 mAP; a
``num_classes`` left at 80 trains an 80-way classifier on 3 classes.
"""
import os.path as osp
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from rcnn_plugin.utils.checkpoint import load_checkpoint_safely

from .context import (
    DoctorContext,
    dataset_classes,
    detector_cfg,
    iter_class_cfgs,
)
from .finding import Finding

__all__ = ['check_checkpoint_classes', 'check_feature_strides',
           'check_num_classes',
           'class_heads', 'has_mask_head', 'measure_feature_strides']


def measure_feature_strides(model: nn.Module,
                            size: int = 256) -> List[Tuple[int, int]]:
    """Run backbone (+ neck) on a blank ``size`` x ``size`` image.

    The model is put in eval mode under ``no_grad`` for the forward (so no
    BatchNorm statistics change); every module's training flag is restored
    after.

    Args:
        model (nn.Module): A detector with ``extract_feat``.
        size (int): Side of the square input; a multiple of the largest
            stride keeps the division exact. Defaults to 256.

    Returns:
        list[tuple[int, int]]: Per output level, the stride as
        ``(stride_w, stride_h)`` = input side // feature map side.
    """
    if not hasattr(model, 'extract_feat'):
        raise TypeError(f'{type(model).__name__} has no extract_feat()')
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    modes = [(m, m.training) for m in model.modules()]
    threads = torch.get_num_threads()
    # One thread: a tiny forward gains nothing from more, and on a busy CPU
    # their synchronisation made it 100x slower (6 s instead of 0.07 s).
    torch.set_num_threads(1)
    # the channels the backbone takes (1 for a grayscale model)
    channels = next((m.in_channels for m in getattr(
        model, 'backbone', model).modules()
                     if isinstance(m, torch.nn.Conv2d)), 3)
    model.eval()
    try:
        with torch.no_grad():
            feats = model.extract_feat(
                torch.zeros(1, channels, size, size, device=device))
    finally:  # restore each module's own mode (frozen BN stays frozen)
        torch.set_num_threads(threads)
        for module, mode in modes:
            module.training = mode
    if isinstance(feats, torch.Tensor):
        feats = [feats]
    return [(round(size / f.shape[-1]), round(size / f.shape[-2]))
            for f in feats]


def _as_pairs(strides: Sequence[Any]) -> List[Tuple[int, int]]:
    """``[4, (8, 8)]`` -> ``[(4, 4), (8, 8)]``."""
    return [(int(s), int(s)) if isinstance(s, (int, float)) else
            (int(s[0]), int(s[1])) for s in strides]


def _show(pairs: Sequence[Tuple[int, int]]) -> str:
    return '[' + ', '.join(str(w) if w == h else f'({w}, {h})'
                           for w, h in pairs) + ']'


def _expected_strides(model_cfg: dict) -> Iterator[Tuple[str, list, bool]]:
    """Yield (config key, strides, whole) for every stride setting.

    ``whole`` is True where every feature level must match (anchors) and
    False where only the first levels are used (RoI extractors). A
    semi-supervised model's settings are read inside ``model.detector``.
    """
    prefix, model_cfg = detector_cfg(model_cfg)
    for head in ('rpn_head', 'bbox_head'):
        head_cfg = model_cfg.get(head) or {}
        anchors = head_cfg.get('anchor_generator')
        if isinstance(anchors, dict) and 'strides' in anchors:
            # SSD's strides are design values (300 / 100 ...), not the
            # ratio of its maps: not comparable with a dry forward
            if 'SSD' not in str(anchors.get('type', '')):
                yield f'{prefix}.{head}.anchor_generator.strides', anchors[
                    'strides'], True
            continue
        for name in ('strides', 'point_strides'):  # anchor-free heads
            if head == 'bbox_head' and head_cfg.get(name):
                yield f'{prefix}.{head}.{name}', head_cfg[name], True
                break
    roi = model_cfg.get('roi_head') or {}
    for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        ext = roi.get(name)
        items = ext if isinstance(ext, (list, tuple)) else [ext]
        for i, item in enumerate(items):
            if isinstance(item, dict) and 'featmap_strides' in item:
                idx = f'[{i}]' if isinstance(ext, (list, tuple)) else ''
                yield (f'{prefix}.roi_head.{name}{idx}.featmap_strides',
                       item['featmap_strides'], False)


def check_feature_strides(ctx: DoctorContext) -> List[Finding]:
    """Compare measured feature strides with the anchor generator and RoI
    extractor strides.

    Args:
        ctx (DoctorContext): The config and model.

    Returns:
        list[Finding]: An error per stride setting that disagrees with the
        features the backbone and neck really produce.
    """
    expected = list(_expected_strides(ctx.cfg.model))
    if not expected:
        return []
    largest = max(max(max(p) for p in _as_pairs(s)) for _, s, _ in expected)
    # A multiple of every stride keeps the division exact; small is fast.
    size = max(64, 2 * largest)
    prefix, _ = detector_cfg(ctx.cfg.model)
    model = ctx.model
    if prefix == 'model.detector' and hasattr(model, 'student'):
        # Student and teacher share one architecture; the wrapper's own
        # extract_feat depends on semi_test_cfg, which may be unset.
        model = model.student
    measured = measure_feature_strides(model, size)
    findings = []
    for key, strides, whole in expected:
        want = _as_pairs(strides)
        got = measured if whole else measured[:len(want)]
        if got == want:
            continue
        scope = 'the' if whole else f'the first {len(want)}'
        findings.append(Finding(
            'feature_strides', 'error',
            f'{key} is {_show(want)} but backbone+neck produce {scope} '
            f'feature maps at strides {_show(got)} (measured by a dry '
            'forward): boxes are placed on the wrong grid; the loss looks '
            'normal and mAP stays near 0',
            f'rewire {prefix}.backbone.out_indices / {prefix}.neck so the '
            f'levels come at {_show(want)}, or set {key}={_show(got)}',
            key))
    return findings


def has_mask_head(detector: dict) -> bool:
    """Whether a detector config predicts masks: a mask head (a list in
    a cascade such as HTC), a panoptic head (Mask2Former), or a one-stage
    head of an instance-segmentation type (RTMDet-Ins).

    Args:
        detector (dict): ``cfg.model`` (or its ``detector``).

    Returns:
        bool: Whether it has a mask branch this check knows.
    """
    heads = ((detector.get('roi_head') or {}).get('mask_head'),
             detector.get('mask_head'), detector.get('panoptic_head'))
    if any(isinstance(head, (dict, list, tuple)) and bool(head)
           for head in heads):
        return True
    kind = str((detector.get('bbox_head') or {}).get('type', ''))
    return any(word in kind for word in ('Ins', 'Mask', 'SOLO'))


def class_heads(model_cfg: dict) -> Iterator[Tuple[str, int]]:
    """Yield (config key, num_classes) of every classifying head.

    The RPN is excluded (it is class-agnostic); ``roi_head.bbox_head`` may
    be a list (Cascade R-CNN).

    Args:
        model_cfg (dict): ``cfg.model`` (its ``detector`` in mmdet's
            semi-supervised models, see :func:`detector_cfg`).

    Yields:
        tuple[str, int]: E.g. ``('model.roi_head.bbox_head.num_classes',
        3)``.
    """
    def heads(cfg: Any, key: str) -> Iterator[Tuple[str, int]]:
        items = cfg if isinstance(cfg, (list, tuple)) else [cfg]
        for i, item in enumerate(items):
            idx = f'[{i}]' if isinstance(cfg, (list, tuple)) else ''
            if isinstance(item, dict) and 'num_classes' in item:
                yield f'{key}{idx}.num_classes', int(item['num_classes'])

    prefix, model_cfg = detector_cfg(model_cfg)
    yield from heads(model_cfg.get('bbox_head'), f'{prefix}.bbox_head')
    roi = model_cfg.get('roi_head') or {}
    for name in ('bbox_head', 'mask_head'):
        yield from heads(roi.get(name), f'{prefix}.roi_head.{name}')


def _split_classes(ctx: DoctorContext
                   ) -> List[Tuple[str, Tuple[str, ...]]]:
    """(dataset key, classes) for each dataset of each dataloader."""
    found = []
    for split in ctx.splits():
        for ds_cfg, key in iter_class_cfgs(
                ctx.dataset_cfg(split), f'{split}_dataloader.dataset'):
            classes = dataset_classes(ds_cfg)
            if classes is not None:
                found.append((key, classes))
    return found


def check_num_classes(ctx: DoctorContext) -> List[Finding]:
    """Compare every head's ``num_classes`` with the datasets' classes and
    the datasets' classes with each other.

    Args:
        ctx (DoctorContext): The config.

    Returns:
        list[Finding]: Errors for a count or class-list mismatch.
    """
    per_split = _split_classes(ctx)
    if not per_split:
        return []
    ref_key, ref = per_split[0]
    findings = []
    for key, classes in per_split[1:]:
        if classes != ref:
            findings.append(Finding(
                'num_classes', 'error',
                f'{key} has classes {classes} but {ref_key} has {ref}: '
                'labels mean different things in training and evaluation',
                f'give {key}.metainfo the same classes, in the same order, '
                f'as {ref_key}', f'{key}.metainfo.classes'))
    for key, num in class_heads(ctx.cfg.model):
        if num == len(ref):
            continue
        effect = (f'{num - len(ref)} classifier outputs no label uses'
                  if num > len(ref) else f'labels >= {num} have no output')
        findings.append(Finding(
            'num_classes', 'error',
            f'{key} is {num} but {ref_key} has {len(ref)} classes {ref}: '
            f'{effect}', f'set {key}={len(ref)}', key))
    return findings


def _checkpoint_classes(load_from: str) -> Optional[Tuple[str, ...]]:
    """Classes saved in a checkpoint's meta, or None when unknown.

    Reads the local file (or the torch hub cache copy of a URL) with
    :func:`load_checkpoint_safely`; nothing is downloaded.
    """
    from .offline import cached_file
    path = osp.expanduser(load_from)
    if not osp.isfile(path):
        path = cached_file(load_from)
    if path is None:
        return None
    ckpt = load_checkpoint_safely(path, map_location='cpu')
    meta = ckpt.get('meta') or {} if isinstance(ckpt, dict) else {}
    classes = (meta.get('dataset_meta') or {}).get('classes') or \
        meta.get('CLASSES')  # mmdet 2.x
    return tuple(classes) if classes else None


def check_checkpoint_classes(ctx: DoctorContext) -> List[Finding]:
    """Compare the classes of ``load_from`` (checkpoint meta) with the
    training dataset's.

    Args:
        ctx (DoctorContext): The config.

    Returns:
        list[Finding]: A warning when the checkpoint was trained on other
        classes (a different count: its classifier is dropped with size
        mismatch warnings; the same count in another order or with other
        names: it is loaded and maps outputs to the wrong classes).
    """
    load_from = ctx.cfg.get('load_from')
    per_split = _split_classes(ctx)
    if not load_from or not per_split:
        return []
    ckpt_classes = _checkpoint_classes(load_from)
    key, classes = per_split[0]
    if ckpt_classes is None or ckpt_classes == classes:
        return []
    if len(ckpt_classes) != len(classes):
        return [Finding(
            'checkpoint_classes', 'warning',
            f'load_from was trained on {len(ckpt_classes)} classes, '
            f'{key} has {len(classes)}: its classifier and box regressor '
            'do not fit and start from random (the size mismatch warnings '
            'at load time); expected when fine-tuning from COCO, a mistake '
            'when resuming your own model',
            'if this is not a fine-tune from another dataset, point '
            f'load_from to a checkpoint trained on {classes}', 'load_from')]
    return [Finding(
        'checkpoint_classes', 'warning',
        f'load_from was trained on classes {ckpt_classes}, {key} has '
        f'{classes}: the classifier loads without a warning but its '
        'outputs mean other classes',
        f'order {key}.metainfo.classes as {ckpt_classes}, or use a '
        'checkpoint trained on these classes', 'load_from')]
