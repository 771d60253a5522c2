"""Test-time augmentation for ``tools/test.py --tta`` (mmdet's convention).

A config may carry ``tta_model`` (mmdet's ``DetTTAModel`` and its merge
settings) and ``tta_pipeline`` (the test pipeline ending in
``TestTimeAug``), as mmdet's own configs do. Without them, mmdet's default
applies: no flip or a horizontal flip, boxes merged by NMS at IoU 0.5.
Unlike mmdet's ``tools/test.py``, the default:

- puts the unflipped view first: ``DetTTAModel`` keeps the first view's
  sample, and the metrics read its ground truth (which a flip after
  ``LoadAnnotations`` would mirror);
- keeps the test pipeline's ``PackDetInputs`` meta keys (``CocoMetric``
  without a json file needs ``instances``);
- is built for each dataset that reads images, through any wrapper;
- refuses pipelines that load proposals (``RandomFlip`` does not flip
  them) and masks under ``DetTTAModel`` (it merges boxes only).
"""
import copy
import logging

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from ..datasets import iter_dataset_cfgs
from ..utils.config_types import cfg_type_name

__all__ = ['DEFAULT_TTA_MODEL', 'default_tta_pipeline', 'apply_tta']

DEFAULT_TTA_MODEL = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))

FLIP_KEYS = ('flip', 'flip_direction')


def default_tta_pipeline(pipeline: list) -> list:
    """mmdet's flip TTA built from a test pipeline.

    The last step must be ``PackDetInputs``; it becomes a ``TestTimeAug``
    of (no flip, horizontal flip) followed by the same packing, with
    ``flip`` and ``flip_direction`` added to its meta keys.

    Raises:
        ValueError: If the pipeline does not end in ``PackDetInputs``, or
            loads proposals (``RandomFlip`` does not flip them).
    """
    if any(cfg_type_name(t) == 'LoadProposals' for t in pipeline):
        raise ValueError(
            'the test pipeline loads proposals, which RandomFlip does not '
            'flip: set a tta_pipeline in the config (or test without --tta)')
    if not pipeline or cfg_type_name(pipeline[-1]) != 'PackDetInputs':
        last = (pipeline[-1].get('type', pipeline[-1])
                if pipeline and isinstance(pipeline[-1], dict)
                else pipeline[-1] if pipeline else None)
        raise ValueError(
            'test-time augmentation needs a test pipeline ending in '
            f'PackDetInputs, got {last!r} last; set tta_pipeline in the '
            'config')
    pack = copy.deepcopy(dict(pipeline[-1]))
    keys = pack.get('meta_keys', ('img_id', 'img_path', 'ori_shape',
                                  'img_shape', 'scale_factor'))
    pack['meta_keys'] = tuple(keys) + tuple(
        k for k in FLIP_KEYS if k not in keys)
    # The unflipped view first: DetTTAModel keeps the first view's sample,
    # whose ground truth the metrics read (the flips would mirror the boxes
    # that LoadAnnotations loaded before them).
    flips = [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip',
                                                    prob=1.)]
    return [copy.deepcopy(dict(t)) for t in pipeline[:-1]] + [
        dict(type='TestTimeAug', transforms=[flips, [pack]])
    ]


def _has_key(cfg, key: str) -> bool:
    """Whether a (nested) config has ``key`` set to something not None."""
    if isinstance(cfg, dict):
        return cfg.get(key) is not None or any(
            _has_key(v, key) for v in cfg.values())
    if isinstance(cfg, (list, tuple)):
        return any(_has_key(v, key) for v in cfg)
    return False


def apply_tta(cfg: Config) -> Config:
    """Wrap ``cfg.model`` in its TTA model and give the test split the TTA
    pipeline, in place (``cfg.tta_model`` / ``cfg.tta_pipeline``, else
    mmdet's flip default, with a warning).

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: A sentence for what cannot be augmented: masks under
            ``DetTTAModel``, a split with no dataset, or a test pipeline
            that :func:`default_tta_pipeline` refuses.
    """
    tta_model = cfg.get('tta_model') or DEFAULT_TTA_MODEL
    if cfg_type_name(tta_model) == 'DetTTAModel' and _has_key(
            cfg.model, 'mask_head'):
        raise ValueError(
            "--tta: mmdet's DetTTAModel merges boxes only, not instance "
            'masks; test this config without --tta')
    leaves = [leaf for leaf, _ in iter_dataset_cfgs(
        cfg.test_dataloader.dataset, 'test_dataloader.dataset')]
    if not leaves:
        raise ValueError('--tta: test_dataloader.dataset holds no dataset')
    if 'tta_model' not in cfg:
        print_log('the config has no tta_model: using DetTTAModel with NMS '
                  'at IoU 0.5 (mmdet\'s default)', 'current', logging.WARNING)
        cfg.tta_model = copy.deepcopy(DEFAULT_TTA_MODEL)
    if 'tta_pipeline' in cfg:
        pipelines = [cfg.tta_pipeline] * len(leaves)
    else:
        print_log('the config has no tta_pipeline: no flip and a horizontal '
                  'flip of the test pipeline (mmdet\'s default)', 'current',
                  logging.WARNING)
        # Each leaf its own: the leaves of a ConcatDataset may differ.
        pipelines = [default_tta_pipeline(leaf.get('pipeline', []))
                     for leaf in leaves]
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    for leaf, pipeline in zip(leaves, pipelines):
        leaf['pipeline'] = copy.deepcopy(pipeline)
    return cfg
