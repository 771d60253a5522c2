"""Checks of the evaluators against their dataloaders and the model."""
import os.path as osp
from typing import Any, Iterator, List, Optional, Tuple

from mmdet.registry import METRICS

from ..utils.config_types import cfg_type_name, iter_pipeline_steps
from .context import (
    DoctorContext,
    dataset_classes,
    detector_cfg,
    iter_class_cfgs,
    iter_dataset_cfgs,
)
from .finding import Finding
from .model_checks import has_mask_head

__all__ = ['check_evaluator']

_MASK_METRICS = ('segm', )


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
    detector = detector_cfg(ctx.cfg.model)[1]
    two_stage = bool(detector.get('roi_head'))
    for metric in _metrics(ev):
        if metric in _MASK_METRICS and not has_mask_head(detector):
            # sure for a two-stage model; a one-stage head may predict
            # masks under a name this check does not know
            findings.append(Finding(
                'evaluator', 'error' if two_stage else 'warning',
                f'{key}.metric asks for {metric!r} but the model has no '
                'mask head' + ('' if two_stage else
                               ' that this check knows (mask_head, '
                               'panoptic_head, or a head type with Ins / '
                               'Mask / SOLO in its name)')
                + ': evaluation fails after the first epoch',
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


def _reads_gt_instances(ev: dict) -> bool:
    """Whether a metric scores the packed ``gt_instances`` against
    predictions in the original image (mmdet's VOCMetric and the plugin's
    BaseDetMetric family; CocoMetric reads the annotations themselves)."""
    from mmdet.evaluation import VOCMetric

    from rcnn_plugin.evaluation.metrics.base_det_metric import BaseDetMetric
    kind = ev.get('type')
    cls = METRICS.get(kind) if isinstance(kind, str) else kind
    return isinstance(cls, type) and issubclass(cls, (BaseDetMetric,
                                                      VOCMetric))


def _loads_before_resize(parts: List[Tuple[str, Any]]
                         ) -> Optional[Tuple[Tuple[str, int],
                                             Tuple[str, int]]]:
    """Where ``LoadAnnotations`` and a later resize are, as
    (pipeline key, top-level step), or None. ``parts`` are the pipelines an
    image goes through, in order, with their keys."""
    load = None
    for key, pipeline in parts:
        for i, step in iter_pipeline_steps(pipeline):
            name = cfg_type_name(step)
            if 'LoadAnnotations' in name and load is None:
                load = (key, i)
            elif 'Resize' in name and load is not None:
                return load, (key, i)
    return None


def _leaf_pipelines(ds_cfg: Any, key: str, outer: tuple = ()
                    ) -> Iterator[List[Tuple[str, Any]]]:
    """For each innermost dataset, the pipelines its images go through
    with their keys: its own, then those of the wrappers around it
    (``MultiImageMixDataset`` runs its pipeline on the inner one's
    output)."""
    if not isinstance(ds_cfg, dict):
        return
    own = ((f'{key}.pipeline', ds_cfg['pipeline']), ) \
        if ds_cfg.get('pipeline') else ()
    if isinstance(ds_cfg.get('dataset'), dict):
        subs = [(ds_cfg['dataset'], f'{key}.dataset')]
    elif isinstance(ds_cfg.get('datasets'), (list, tuple)):
        subs = [(sub, f'{key}.datasets[{i}]')
                for i, sub in enumerate(ds_cfg['datasets'])]
    else:
        yield list(own + outer)
        return
    for sub, sub_key in subs:
        yield from _leaf_pipelines(sub, sub_key, own + outer)


def _scales_gt_back(ev: dict) -> bool:
    """Whether a metric maps ground truth loaded before ``Resize`` back to
    the original image (the plugin's BaseDetMetric family, marked by
    ConfigDoctorHook / GroundTruthFrameHook)."""
    from rcnn_plugin.evaluation.metrics.base_det_metric import BaseDetMetric
    kind = ev.get('type')
    cls = METRICS.get(kind) if isinstance(kind, str) else kind
    return isinstance(cls, type) and issubclass(cls, BaseDetMetric)


def _gt_frame_findings(ctx: DoctorContext, ev: dict, key: str,
                       split: str) -> List[Finding]:
    if not _reads_gt_instances(ev):
        return []
    ours = _scales_gt_back(ev)
    findings = []
    for parts in _leaf_pipelines(ctx.dataset_cfg(split),
                                 f'{split}_dataloader.dataset'):
        found = _loads_before_resize(parts)
        if found is None:
            continue
        (load_key, i), (resize_key, j) = found
        resize = 'resizing' if resize_key == load_key else \
            f'{resize_key} resizes'
        effect = ('reads those resized boxes: it scales them back by each '
                  'image\'s scale_factor where ConfigDoctorHook can tell '
                  'the order from the built dataset, other consumers of '
                  'the packed boxes do not' if ours else
                  'scores those resized boxes against predictions in the '
                  'original image: detections miss them and the metric is '
                  'near zero')
        findings.append(Finding(
            'evaluator', 'error',
            f'{load_key} loads annotations (step {i}) before {resize} '
            f'(step {j}), and {key} ({ev.get("type")}) {effect}',
            'move LoadAnnotations after the resize, as mmdet\'s test '
            'pipelines do', load_key))
    return findings


def check_evaluator(ctx: DoctorContext) -> List[Finding]:
    """Check evaluators against their dataloaders and the model.

    Args:
        ctx (DoctorContext): The config.

    Returns:
        list[Finding]: Errors for an evaluator ``ann_file`` that is not
        its dataset's, for mask metrics without a mask head and for a
        metric that reads ``gt_instances`` from a pipeline that loads them
        before resizing; an info
        for a classwise report on a single class.
    """
    findings = []
    for split in ('val', 'test'):
        for ev, key in _evaluators(ctx.cfg, split):
            findings += _check_one_evaluator(ctx, ev, key, split)
            findings += _gt_frame_findings(ctx, ev, key, split)
    return findings
