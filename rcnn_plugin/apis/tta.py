"""Test-time augmentation for ``tools/test.py --tta`` (mmdet's convention).

A config may carry ``tta_model`` (mmdet's ``DetTTAModel`` and its merge
settings) and ``tta_pipeline`` (the test pipeline ending in
``TestTimeAug``), as mmdet's own configs do. Without them, mmdet's default
applies: horizontal flip or not, boxes merged by NMS at IoU 0.5. Unlike
mmdet's ``tools/test.py``, the default keeps the test pipeline's
``PackDetInputs`` meta keys (``CocoMetric`` without a json file needs
``instances``), and the pipeline is set on the dataset that reads the
images, through any wrapper.
"""
import copy
import logging

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from ..datasets import iter_dataset_cfgs, update_inner_dataset_cfg

__all__ = ['DEFAULT_TTA_MODEL', 'default_tta_pipeline', 'apply_tta']

DEFAULT_TTA_MODEL = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))

FLIP_KEYS = ('flip', 'flip_direction')


def default_tta_pipeline(pipeline: list) -> list:
    """mmdet's flip TTA built from a test pipeline.

    The last step must be ``PackDetInputs``; it becomes a ``TestTimeAug``
    of (horizontal flip, no flip) followed by the same packing, with
    ``flip`` and ``flip_direction`` added to its meta keys.

    Raises:
        ValueError: If the pipeline does not end in ``PackDetInputs``.
    """
    if not pipeline or pipeline[-1].get('type') != 'PackDetInputs':
        last = pipeline[-1].get('type') if pipeline else None
        raise ValueError(
            'test-time augmentation needs a test pipeline ending in '
            f'PackDetInputs, got {last!r} last; set tta_pipeline in the '
            'config')
    pack = copy.deepcopy(dict(pipeline[-1]))
    keys = pack.get('meta_keys', ('img_id', 'img_path', 'ori_shape',
                                  'img_shape', 'scale_factor'))
    pack['meta_keys'] = tuple(keys) + tuple(
        k for k in FLIP_KEYS if k not in keys)
    flips = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip',
                                                    prob=0.)]
    return [copy.deepcopy(dict(t)) for t in pipeline[:-1]] + [
        dict(type='TestTimeAug', transforms=[flips, [pack]])
    ]


def apply_tta(cfg: Config) -> Config:
    """Wrap ``cfg.model`` in its TTA model and give the test split the TTA
    pipeline, in place (``cfg.tta_model`` / ``cfg.tta_pipeline``, else
    mmdet's flip default, with a warning).

    Returns:
        Config: ``cfg``.
    """
    roi_head = cfg.model.get('roi_head') or {}
    if roi_head.get('mask_head') is not None:
        raise ValueError(
            "--tta: mmdet's DetTTAModel merges boxes only, not instance "
            'masks; test this Mask R-CNN config without --tta')
    if 'tta_model' not in cfg:
        print_log('the config has no tta_model: using DetTTAModel with NMS '
                  'at IoU 0.5 (mmdet\'s default)', 'current', logging.WARNING)
        cfg.tta_model = copy.deepcopy(DEFAULT_TTA_MODEL)
    if 'tta_pipeline' not in cfg:
        leaf = next(iter_dataset_cfgs(cfg.test_dataloader.dataset, ''))[0]
        print_log('the config has no tta_pipeline: flipping the test '
                  'pipeline horizontally (mmdet\'s default)', 'current',
                  logging.WARNING)
        cfg.tta_pipeline = default_tta_pipeline(leaf.get('pipeline', []))
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    update_inner_dataset_cfg(cfg.test_dataloader.dataset,
                             pipeline=copy.deepcopy(cfg.tta_pipeline))
    return cfg
