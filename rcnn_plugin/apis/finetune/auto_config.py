"""Write the config of a one-command fine-tune.

The written file is a normal mmdet config: it inherits the plugin's model,
schedule and runtime bases (``configs/_base_/``, through ``mmdet::`` at
their roots) and states only what the data decided, so ``tools/train.py``
and ``tools/test.py`` continue from it.
"""
import copy
import math
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ...utils.config_types import cfg_type_name

__all__ = ['FinetuneOptions', 'MODELS', 'build_overrides', 'write_config']

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = osp.join(REPO, 'configs')

# --model -> the model base under configs/_base_/models/.
MODELS = {
    'faster-rcnn': 'faster-rcnn_mobilenetv2_fpn-128.py',
    'mask-rcnn': 'mask-rcnn_mobilenetv2_fpn-128.py',
    'fast-rcnn': 'fast-rcnn_mobilenetv2_fpn-128.py',
}
RUN_FOLDER_OVERLAY = osp.join(CONFIGS, '_base_', 'hooks', 'run-folder.py')
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'instances')


@dataclass
class FinetuneOptions:
    """The choices a fine-tune config is written from.

    Attributes:
        model (str): A key of :data:`MODELS`.
        classes (tuple[str, ...]): Class names, in label order.
        img_scale (tuple[int, int]): ``(long, short)`` input scale.
        epochs (int): Training epochs.
        batch_size (int): Training images per step (per process).
        lr (float): SGD learning rate, for the total batch.
        seed (int): ``randomness.seed``.
        proposal_dir (str, optional): Fast R-CNN proposal files
            ``<split>.pkl``. Defaults to None.
        load_from (str, optional): Checkpoint to start from. Defaults to
            None.
        gpus (int): Training processes; ``lr`` is set for
            ``batch_size x gpus`` images per step. Defaults to 1.
        steps_per_epoch (int, optional): Training steps per epoch; the
            warm-up and the decay are fitted to a short run with it.
            Defaults to None (100 warm-up steps).
        deep_images (bool): The images hold more than 8 bits per sample
            (16-bit microscopy or X-ray): read with
            ``LoadDomainImageFromFile`` and a per-image 1-99 percentile
            window instead of mmdet's 8-bit loader. Defaults to False.
    """
    model: str
    classes: Tuple[str, ...]
    img_scale: Tuple[int, int]
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    proposal_dir: Optional[str] = None
    load_from: Optional[str] = None
    gpus: int = 1
    steps_per_epoch: Optional[int] = None
    deep_images: bool = False

    @property
    def with_mask(self) -> bool:
        """bool: Whether the model predicts masks."""
        return self.model == 'mask-rcnn'


def _pipelines(opts: FinetuneOptions) -> Tuple[List[dict], List[dict]]:
    """Training and test pipelines at the chosen scale."""
    load_ann = dict(type='LoadAnnotations', with_bbox=True)
    if opts.with_mask:
        # Polygons stay polygons through Resize and flip (cheaper).
        load_ann.update(with_mask=True, poly2mask=False)
    resize = dict(type='Resize', scale=opts.img_scale, keep_ratio=True)
    # Horizontal flips only: valid for streets, people and most scenes.
    flip = dict(type='RandomFlip', prob=0.5)
    load = dict(type='LoadImageFromFile')
    if opts.deep_images:  # mmdet's loader would cut them to 8 bits
        load = dict(type='LoadDomainImageFromFile', percentiles=(1, 99))
    train = [load, load_ann, resize, flip]
    test = [load, resize, load_ann]
    if opts.proposal_dir:
        train = [train[0], dict(type='LoadProposals', num_max_proposals=1000),
                 load_ann, dict(type='ProposalBroadcaster',
                                transforms=[resize, flip])]
        test = [test[0], dict(type='LoadProposals', num_max_proposals=None),
                dict(type='ProposalBroadcaster', transforms=[resize]),
                load_ann]
    train.append(dict(type='PackDetInputs'))
    # 'instances' lets CocoMetric and VOCMetric evaluate without a json.
    test.append(dict(type='PackDetInputs', meta_keys=META_KEYS))
    return train, test


def _with_pipeline(dataset: dict, pipeline: List[dict],
                   test_mode: bool) -> dict:
    """A copy of a dataset config (or wrapper) with its pipeline set."""
    dataset = copy.deepcopy(dataset)
    inner = dataset.get('dataset', dataset)
    inner['pipeline'] = pipeline
    inner['test_mode'] = test_mode
    return dataset


def _loaders(datasets: Dict[str, dict], opts: FinetuneOptions) -> dict:
    """train / val / test dataloaders for the split configs."""
    train_pipe, test_pipe = _pipelines(opts)
    loaders = dict(train_dataloader=dict(
        batch_size=opts.batch_size, num_workers=2, persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(type='AspectRatioBatchSampler'),
        dataset=_with_pipeline(datasets['train'], train_pipe, False)))
    for split in ('val', 'test'):
        loaders[f'{split}_dataloader'] = dict(
            batch_size=1, num_workers=2, persistent_workers=True,
            drop_last=False,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=_with_pipeline(datasets[split], test_pipe, True))
    return loaders


def _model(opts: FinetuneOptions) -> dict:
    num = len(opts.classes)
    roi_head = dict(bbox_head=dict(num_classes=num))
    if opts.with_mask:
        roi_head['mask_head'] = dict(num_classes=num)
    return dict(roi_head=roi_head)


def _schedule(opts: FinetuneOptions) -> dict:
    # Decay after 3/4 of the epochs, before the last one; warm up for 100
    # steps, or a quarter of a short run (a tiny dataset's 60 epochs of 2
    # steps decayed while still warming up), and decay after the warm-up.
    milestone = max(1, int(opts.epochs * 0.75 + 0.5))
    milestone = min(milestone, max(opts.epochs - 1, 1))
    warmup = 100
    if opts.steps_per_epoch:
        warmup = max(1, min(100, opts.steps_per_epoch * opts.epochs // 4))
        milestone = max(milestone, min(
            math.ceil(warmup / opts.steps_per_epoch), opts.epochs))
    return dict(
        train_cfg=dict(max_epochs=opts.epochs, val_interval=1),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.001, by_epoch=False,
                 begin=0, end=warmup),
            dict(type='MultiStepLR', begin=0, end=opts.epochs,
                 by_epoch=True, milestones=[milestone], gamma=0.1)
        ],
        optim_wrapper=dict(optimizer=dict(lr=opts.lr),
                           clip_grad=dict(max_norm=35, norm_type=2)),
        # The batch the lr is set for: all processes (the config doctor
        # compares it with world size x batch_size).
        auto_scale_lr=dict(enable=False,
                           base_batch_size=opts.batch_size * opts.gpus))


def build_overrides(datasets: Dict[str, dict],
                    opts: FinetuneOptions) -> dict:
    """Everything the written config states over its bases.

    Args:
        datasets (dict[str, dict]): Dataset configs (no pipeline) for
            ``'train'``, ``'val'`` and ``'test'`` (the test split may be
            the validation split).
        opts (FinetuneOptions): The choices.

    Returns:
        dict: The overrides, run-folder overlay included.
    """
    out = Config.fromfile(RUN_FOLDER_OVERLAY).to_dict() if osp.isfile(
        RUN_FOLDER_OVERLAY) else {}
    metrics = ['bbox', 'segm'] if opts.with_mask else 'bbox'
    evaluator = [
        dict(type='VOCMetric', metric='mAP', eval_mode='area'),
        # Per-class rows only when there is more than one class (the
        # config doctor flags a one-class table as a repeat).
        dict(type='CocoMetric', metric=metrics,
             classwise=len(opts.classes) > 1),
    ]
    hooks = out.setdefault('default_hooks', {})
    hooks['checkpoint'] = dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=1,
        save_best='pascal_voc/mAP', rule='greater')
    for hook in out.get('custom_hooks', []):
        if cfg_type_name(hook).endswith('EarlyStoppingHook'):
            # A quarter of the schedule without gain (at least 5 epochs):
            # long schedules of tiny val sets are noisy.
            hook.update(monitor='pascal_voc/mAP',
                        patience=max(5, round(opts.epochs / 4)))
    out.update(
        model=_model(opts), **_loaders(datasets, opts), **_schedule(opts),
        val_evaluator=evaluator, test_evaluator=evaluator,
        randomness=dict(seed=opts.seed))
    out.pop('custom_imports', None)  # written once, above the overrides
    if opts.load_from:
        out['load_from'] = opts.load_from
    return out


def write_config(path: str, model: str, overrides: dict,
                 header: Sequence[str] = ()) -> str:
    """Write a config inheriting the plugin's bases, plus ``overrides``.

    Args:
        path (str): The ``.py`` file to write.
        model (str): A key of :data:`MODELS`.
        overrides (dict): What the config states over its bases.
        header (Sequence[str]): Comment lines for the top of the file.
            Defaults to ().

    Returns:
        str: ``path``.
    """
    bases = [
        osp.join(CONFIGS, '_base_', 'models', MODELS[model]),
        osp.join(CONFIGS, '_base_', 'schedules', 'schedule_8e.py'),
        osp.join(CONFIGS, '_base_', 'default_runtime.py'),
    ]
    body = Config(overrides).pretty_text
    lines = [f'# {line}'.rstrip() for line in header]
    lines += ['_base_ = [']
    lines += [f'    {base!r},' for base in bases]
    lines += [']', '',
              "custom_imports = dict(imports=['rcnn_plugin'], "
              'allow_failed_imports=False)', '', body]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path
