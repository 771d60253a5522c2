"""The written fine-tune config: a normal config inheriting ours."""
import math

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.apis.finetune import (
    FinetuneOptions,
    build_overrides,
    write_config,
)

from conftest import shrink_model

CLASSES = ('rbc', 'wbc', 'platelet')


def _datasets(root):
    def cfg(split):
        return dict(type='SyntheticCellsDataset', data_root=root,
                    ann_file=f'annotations/{split}.json',
                    data_prefix=dict(img=''))
    return dict(train=cfg('train'), val=cfg('val'), test=cfg('val'))


@pytest.mark.parametrize('model', ['faster-rcnn', 'mask-rcnn', 'fast-rcnn'])
def test_written_config_builds_and_runs(tmp_path, synthetic_cells, model):
    register_all_modules()
    opts = FinetuneOptions(model=model, classes=CLASSES,
                           img_scale=(128, 96), epochs=3, batch_size=2,
                           lr=0.0025, seed=7,
                           proposal_dir=str(tmp_path) if model == 'fast-rcnn'
                           else None)
    overrides = build_overrides(_datasets(synthetic_cells), opts)
    path = write_config(str(tmp_path / 'ft.py'), model, overrides,
                        header=['test'])
    text = open(path).read()
    assert text.startswith('# test\n_base_ = [')
    assert "custom_imports = dict(imports=['rcnn_plugin']" in text
    cfg = Config.fromfile(path)
    assert cfg.model.roi_head.bbox_head.num_classes == 3
    if model == 'mask-rcnn':
        assert cfg.model.roi_head.mask_head.num_classes == 3
        assert cfg.val_evaluator[1]['metric'] == ['bbox', 'segm']
    assert cfg.train_cfg.max_epochs == 3 and cfg.train_cfg.val_interval == 1
    assert cfg.param_scheduler[1]['milestones'] == [2]
    assert cfg.optim_wrapper.optimizer.lr == 0.0025
    assert cfg.randomness.seed == 7
    assert cfg.default_hooks.checkpoint.save_best == 'pascal_voc/mAP'
    types = [h['type'] for h in cfg.custom_hooks]
    assert 'ConfigDoctorHook' in types and 'TrainingHealthHook' in types
    # The datasets build with the written pipelines, at the chosen scale
    # (the synthetic cells have boxes only: no mask pipeline to run).
    if model == 'faster-rcnn':
        train = DATASETS.build(cfg.train_dataloader.dataset)
        assert max(train[0]['inputs'].shape[1:]) <= 128
        val = DATASETS.build(cfg.val_dataloader.dataset)
        assert 'instances' in val[0]['data_samples'].metainfo
    # One loss and one predict step on the shrunk model.
    det = MODELS.build(shrink_model(cfg.model))
    packed = demo_mm_inputs(2, [(3, 96, 128)] * 2, num_items=[3, 0],
                            num_classes=3, with_mask=model == 'mask-rcnn')
    for s in packed['data_samples']:
        s.gt_instances.labels.clamp_(max=2)
    if model == 'fast-rcnn':
        from test_configs import add_demo_proposals
        add_demo_proposals(packed, counts=[20, 0])
        pipe = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
        assert pipe[:2] == ['LoadImageFromFile', 'LoadProposals']
        assert 'ProposalBroadcaster' in pipe
    losses = det(**det.data_preprocessor(packed, True), mode='loss')
    total = sum(sum(x.sum() for x in v) if isinstance(v, list) else v.sum()
                for k, v in losses.items() if 'loss' in k)
    assert math.isfinite(float(total))
    det.eval()
    with torch.no_grad():
        out = det(**det.data_preprocessor(packed, False), mode='predict')
    assert len(out) == 2


def test_cfg_keys_reach_the_bases(tmp_path, synthetic_cells):
    """A key the overrides do not state merges into the bases' values."""
    opts = FinetuneOptions(model='faster-rcnn', classes=CLASSES,
                           img_scale=(128, 96), epochs=2, batch_size=2,
                           lr=0.0025)
    overrides = build_overrides(_datasets(synthetic_cells), opts)
    merged = Config(overrides)
    merged.merge_from_dict(
        {'model.rpn_head.anchor_generator.scales': [4]})
    path = write_config(str(tmp_path / 'ft.py'), 'faster-rcnn',
                        merged.to_dict())
    cfg = Config.fromfile(path)
    assert cfg.model.rpn_head.anchor_generator.scales == [4]
    assert cfg.model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert cfg.model.backbone.type == 'MobileNetV2'


@pytest.mark.parametrize('classes,classwise', [(('balloon', ), False),
                                               (CLASSES, True)])
def test_per_class_coco_table_only_for_several_classes(
        synthetic_cells, classes, classwise):
    opts = FinetuneOptions(model='faster-rcnn', classes=classes,
                           img_scale=(128, 96), epochs=2, batch_size=2,
                           lr=0.01)
    overrides = build_overrides(_datasets(synthetic_cells), opts)
    for key in ('val_evaluator', 'test_evaluator'):
        assert overrides[key][1]['classwise'] is classwise


@pytest.mark.parametrize('epochs,steps,warmup,milestone', [
    (8, 52, 100, 6),    # BCCD: as before
    (60, 2, 30, 45),    # 8 images at batch 4: the decay came mid warm-up
    (2, 300, 100, 1),   # --epochs 2: the decay fell on the end
    (1, 10, 2, 1),      # one epoch: nothing to decay
    (8, None, 100, 6),  # steps unknown: the old rule
])
def test_schedule_fits_warm_up_and_decay_to_the_run(epochs, steps, warmup,
                                                    milestone):
    from rcnn_plugin.apis.finetune.auto_config import _schedule
    opts = FinetuneOptions(model='faster-rcnn', classes=CLASSES,
                           img_scale=(128, 96), epochs=epochs, batch_size=4,
                           lr=0.01, steps_per_epoch=steps)
    warm, decay = _schedule(opts)['param_scheduler']
    assert (warm['end'], decay['milestones']) == (warmup, [milestone])
    if steps:  # the decay comes after the warm-up
        assert decay['milestones'][0] * steps >= warm['end']
