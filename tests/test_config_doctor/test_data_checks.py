"""Normalisation, lr, offline weights, evaluators and empty data, each
broken in the demo config (on the tiny synthetic dataset) by one key."""
import copy
import os.path as osp
import time

import pytest
import torch
from mmengine.config import Config

from rcnn_plugin.config_doctor import (
    has_network,
    known_convention,
    prepare_registries,
    run_checks,
)
from rcnn_plugin.config_doctor import offline as offline_mod
from rcnn_plugin.config_doctor.data_checks import (
    linear_scaling_reference,
)

from conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
_cache = {}


def on_synthetic(cfg, root):
    """Point the demo config's datasets and evaluators at ``root``."""
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = root + '/'
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = osp.join(
            root, 'annotations', 'val.json')
    return cfg


@pytest.fixture
def demo(synthetic_cells):
    """Build the demo config on the tiny dataset with some keys changed."""
    if 'cfg' not in _cache:
        _cache['cfg'] = Config.fromfile(DEMO)
        prepare_registries(_cache['cfg'])

    def make(changes=None):
        cfg = on_synthetic(copy.deepcopy(_cache['cfg']), synthetic_cells)
        cfg.merge_from_dict(changes or {})
        return cfg
    return make


def _found(findings, check, severity):
    return [f for f in findings
            if f.check == check and f.severity == severity]


def test_demo_config_has_no_finding(demo):
    checks = ['normalisation', 'learning_rate', 'offline', 'evaluator',
              'empty_data', 'ignored_negatives', 'num_classes']
    assert run_checks(demo(), checks=checks) == []


def test_bgr_input_to_torchvision_weights(demo):
    cfg = demo({'model.data_preprocessor.bgr_to_rgb': False})
    found = _found(run_checks(cfg, checks=['normalisation']),
                   'normalisation', 'warning')
    assert [f.key for f in found] == ['model.data_preprocessor.bgr_to_rgb']
    assert found[0].fix == 'set model.data_preprocessor.bgr_to_rgb=True'


def test_zero_one_mean_is_an_error(demo):
    cfg = demo({'model.data_preprocessor.mean': [0.485, 0.456, 0.406]})
    found = _found(run_checks(cfg, checks=['normalisation']),
                   'normalisation', 'error')
    assert [f.key for f in found] == ['model.data_preprocessor.mean']
    assert '[123.675, 116.28, 103.53]' in found[0].fix


def test_caffe_weights_with_pytorch_preprocessor(demo):
    key = 'model.backbone.init_cfg.checkpoint'
    cfg = demo({key: 'open-mmlab://detectron2/resnet50_caffe'})
    findings = run_checks(cfg, checks=['normalisation'])
    assert {(f.key, f.severity) for f in findings} == {
        ('model.data_preprocessor.bgr_to_rgb', 'warning'),
        ('model.data_preprocessor.mean', 'warning'),
        ('model.data_preprocessor.std', 'error')}


def _multi_branch(cfg, semi):
    """Wrap the demo's preprocessor as the DA configs do (``semi``: and its
    detector, as mmdet's semi-supervised configs do)."""
    inner = cfg.model.data_preprocessor
    if semi:
        detector = copy.deepcopy(cfg.model)
        cfg.model = dict(type='SoftTeacher', detector=detector)
    cfg.model.data_preprocessor = dict(type='MultiBranchDataPreprocessor',
                                       data_preprocessor=inner)
    return cfg


@pytest.mark.parametrize('semi', [False, True])
def test_multi_branch_preprocessor_is_read_inside(demo, semi):
    cfg = _multi_branch(demo(), semi)
    assert run_checks(cfg, checks=['normalisation']) == []
    cfg = _multi_branch(demo({'model.data_preprocessor.bgr_to_rgb': False}),
                        semi)
    found = _found(run_checks(cfg, checks=['normalisation']),
                   'normalisation', 'warning')
    key = 'model.data_preprocessor.data_preprocessor.bgr_to_rgb'
    assert [f.key for f in found] == [key]
    assert found[0].fix == f'set {key}=True'
    backbone = 'model.detector.backbone' if semi else 'model.backbone'
    assert found[0].message.startswith(backbone)


def test_semi_supervised_detector_keeps_class_and_mask_checks(demo):
    cfg = _multi_branch(
        demo({'model.roi_head.bbox_head.num_classes': 80}), semi=True)
    found = run_checks(cfg, checks=['num_classes'])
    key = 'model.detector.roi_head.bbox_head.num_classes'
    assert [f.key for f in found] == [key]
    assert found[0].fix == f'set {key}=3'
    # A mask head inside the wrapped detector satisfies a segm metric.
    cfg = demo({'val_evaluator.metric': ['bbox', 'segm']})
    cfg.model.roi_head.mask_head = dict(type='FCNMaskHead', num_classes=3)
    cfg = _multi_branch(cfg, semi=True)
    assert not [f for f in run_checks(cfg, checks=['evaluator'])
                if 'mask head' in f.message]


def test_known_convention():
    assert known_convention('torchvision://resnet50') == 'pytorch'
    assert known_convention('offline-torchvision://mobilenet_v2') == \
        'pytorch'
    assert known_convention('open-mmlab://detectron/resnet50_caffe') == \
        'caffe'
    assert known_convention('open-mmlab://regnetx_3.2gf') == 'regnet'
    assert known_convention('/home/me/backbone.pth') is None


def test_lr_not_scaled_to_batch(demo):
    cfg = demo({'train_dataloader.batch_size': 16,
                'optim_wrapper.optimizer.lr': 0.005})
    found = _found(run_checks(cfg, checks=['learning_rate']),
                   'learning_rate', 'warning')
    assert [f.key for f in found] == ['optim_wrapper.optimizer.lr']
    # lr 0.005 for base batch 4, real batch 16: 0.02.
    assert 'lr = 0.02' in found[0].message
    assert 'optim_wrapper.optimizer.lr=0.02' in found[0].fix


def test_lr_counts_processes(demo):
    cfg = demo({'optim_wrapper.optimizer.lr': 0.005})
    found = run_checks(cfg, checks=['learning_rate'], world_size=2)
    assert len(found) == 1 and 'lr = 0.01' in found[0].message
    cfg = demo({'auto_scale_lr.enable': True,
                'optim_wrapper.optimizer.lr': 0.005})
    found = run_checks(cfg, checks=['learning_rate'], world_size=2)
    assert [f.severity for f in found] == ['info']


ROOT_SCHEDULE = """
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02))
auto_scale_lr = dict(enable=False, base_batch_size=16)
"""
LEAF = """
_base_ = '{base}'
optim_wrapper = dict(optimizer=dict(lr={lr}))
auto_scale_lr = dict(enable={auto}, base_batch_size={base_batch})
train_dataloader = dict(batch_size={batch})
"""


def _leaf(tmp_path, base, lr=0.01, batch=4, base_batch=4, auto=False):
    path = tmp_path / f'leaf_{lr}_{batch}_{base_batch}_{auto}.py'
    path.write_text(LEAF.format(base=base, lr=lr, batch=batch,
                                base_batch=base_batch, auto=auto))
    return Config.fromfile(str(path))


def _reference_warnings(cfg, world_size=1):
    return [f for f in run_checks(cfg, checks=['learning_rate'],
                                  world_size=world_size)
            if 'linear scaling of' in f.message]


def test_lr_above_linear_scaling_of_furthest_base(tmp_path):
    (tmp_path / 'root.py').write_text(ROOT_SCHEDULE)
    # A middle config that halves the base batch but keeps half the lr:
    # 2x the root's lr per image, and the leaf inherits it silently.
    (tmp_path / 'mid.py').write_text(LEAF.format(
        base='./root.py', lr=0.01, batch=4, base_batch=4, auto=False))
    (tmp_path / 'leaf.py').write_text("_base_ = ['./mid.py']\n")
    found = run_checks(Config.fromfile(str(tmp_path / 'leaf.py')),
                       checks=['learning_rate'])
    assert [(f.severity, f.key) for f in found] == [
        ('warning', 'optim_wrapper.optimizer.lr')]
    msg = found[0].message
    assert 'root.py' in msg and 'mid.py' not in msg
    assert 'lr 0.02 at batch 16' in msg and '2.0x' in msg
    assert 'lr = 0.005' in msg and 'lr = 0.01' in msg
    assert 'optim_wrapper.optimizer.lr=0.005' in found[0].fix
    # Within 10 % of the linear scaling, or below it: silent.
    base = str(tmp_path / 'root.py')
    assert _reference_warnings(_leaf(tmp_path, base, lr=0.0054)) == []
    assert _reference_warnings(_leaf(tmp_path, base, lr=0.001)) == []
    assert _reference_warnings(_leaf(tmp_path, base, lr=0.02, batch=16,
                                     base_batch=16)) == []


def test_lr_against_mmdet_schedule_1x(tmp_path):
    """lr 0.01 at batch 4 on mmdet's 1x schedule (0.02 at batch 16)."""
    cfg = _leaf(tmp_path, 'mmdet::_base_/schedules/schedule_1x.py')
    (found, ) = _reference_warnings(cfg)
    assert 'mmdet::_base_/schedules/schedule_1x.py' in found.message
    assert '2.0x' in found.message and 'lr = 0.005' in found.message
    # Two processes of batch 4 with lr 0.01: that is the linear scaling.
    assert _reference_warnings(cfg, world_size=2) == []


def test_lr_reference_with_auto_scale(tmp_path):
    cfg = _leaf(tmp_path, 'mmdet::_base_/schedules/schedule_1x.py',
                auto=True)
    # Auto-scaled to 0.02 at batch 8, the scaling of 0.02 / 16 gives 0.01.
    (found, ) = _reference_warnings(cfg, world_size=2)
    assert 'auto-scaled to 0.02' in found.message and '2.0x' in found.message
    assert 'optim_wrapper.optimizer.lr=0.005' in found.fix


def test_lr_reference_silent_without_ancestor(tmp_path):
    path = tmp_path / 'alone.py'
    path.write_text(LEAF.replace("_base_ = '{base}'", '').format(
        lr=0.08, batch=16, base_batch=16, auto=False))
    cfg = Config.fromfile(str(path))
    assert linear_scaling_reference(cfg) is None
    assert _reference_warnings(cfg) == []
    # A config without a file (built from a dict) has no bases either.
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(lr=1.0)),
                      train_dataloader=dict(batch_size=1)))
    assert linear_scaling_reference(cfg) is None
    assert run_checks(cfg, checks=['learning_rate']) == []


def test_demo_config_reference_is_mmdet_schedule():
    ref = linear_scaling_reference(Config.fromfile(
        DEMO, import_custom_modules=False))
    assert ref['name'] == 'mmdet::_base_/schedules/schedule_1x.py'
    assert (ref['lr'], ref['base_batch_size']) == (0.02, 16)


URL = ('https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
       'faster_rcnn_r50_fpn_1x_coco/faster_rcnn_r50_fpn_1x_coco_20200130'
       '-047c8118.pth')


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    return tmp_path / 'hub' / 'checkpoints'


@pytest.mark.parametrize('online,severity', [(False, 'error'),
                                             (True, 'info')])
def test_remote_load_from(demo, empty_hub, monkeypatch, online, severity):
    monkeypatch.setattr(offline_mod, 'has_network', lambda host: online)
    findings = run_checks(demo({'load_from': URL}), checks=['offline'])
    assert [(f.key, f.severity) for f in findings] == [
        ('load_from', severity)]
    # Once the file is in the hub cache, nothing is reported.
    empty_hub.mkdir(parents=True)
    (empty_hub / osp.basename(URL)).write_bytes(b'')
    assert run_checks(demo({'load_from': URL}), checks=['offline']) == []


def test_remote_init_cfg_anywhere_in_model(demo, empty_hub, monkeypatch):
    monkeypatch.setattr(offline_mod, 'has_network', lambda host: False)
    cfg = demo({'model.roi_head.bbox_head.init_cfg':
                dict(type='Pretrained', checkpoint='torchvision://resnet50')})
    findings = run_checks(cfg, checks=['offline'])
    assert [(f.key, f.severity) for f in findings] == [
        ('model.roi_head.bbox_head.init_cfg.checkpoint', 'error')]
    assert 'resnet50-' in findings[0].fix  # the file to copy


def test_offline_weights_missing(demo, tmp_path, monkeypatch):
    from rcnn_plugin.models.utils import offline_weights
    monkeypatch.setattr(offline_weights, 'candidate_paths',
                        lambda name: [str(tmp_path / name)])
    findings = run_checks(demo(), checks=['offline'])
    assert [(f.key, f.severity) for f in findings] == [
        ('model.backbone.init_cfg.checkpoint', 'error')]


def test_missing_local_load_from(demo, tmp_path):
    findings = run_checks(demo({'load_from': str(tmp_path / 'no.pth')}),
                          checks=['offline'])
    assert [(f.key, f.severity) for f in findings] == [('load_from', 'error')]


def test_has_network_env_and_timeout(monkeypatch):
    monkeypatch.setenv('RCNN_PLUGIN_OFFLINE', '1')
    assert has_network('example.org') is False
    monkeypatch.setenv('RCNN_PLUGIN_OFFLINE', '0')
    assert has_network('example.org') is True
    monkeypatch.delenv('RCNN_PLUGIN_OFFLINE')
    start = time.perf_counter()
    assert has_network('doctor-probe.invalid', timeout=0.5) is False
    assert time.perf_counter() - start < 2


def test_evaluator_reads_other_split(demo, synthetic_cells):
    train_json = osp.join(synthetic_cells, 'annotations', 'train.json')
    findings = run_checks(demo({'val_evaluator.ann_file': train_json}),
                          checks=['evaluator'])
    assert [(f.key, f.severity) for f in findings] == [
        ('val_evaluator.ann_file', 'error')]
    assert 'val.json' in findings[0].fix


def test_mask_metric_without_mask_head(demo):
    findings = run_checks(demo({'val_evaluator.metric': ['bbox', 'segm']}),
                          checks=['evaluator'])
    assert [(f.key, f.severity) for f in findings] == [
        ('val_evaluator.metric', 'error')]
    # A cascade's mask heads are a list, one per stage (mmdet's HTC).
    cfg = demo({'val_evaluator.metric': ['bbox', 'segm']})
    cfg.model.roi_head.mask_head = [dict(type='HTCMaskHead', num_classes=3)
                                    for _ in range(3)]
    assert not run_checks(cfg, checks=['evaluator'])
    # One-stage instance segmentation (RTMDet-Ins) and Mask2Former's
    # panoptic head predict masks: they were refused as maskless.
    cfg.model.pop('roi_head')
    cfg.model.bbox_head = dict(type='RTMDetInsSepBNHead', num_classes=3)
    assert not run_checks(cfg, checks=['evaluator'])
    cfg.model.bbox_head = dict(type='RetinaHead', num_classes=3)
    cfg.model.panoptic_head = dict(type='Mask2FormerHead')
    assert not run_checks(cfg, checks=['evaluator'])
    cfg.model.pop('panoptic_head')  # a one-stage box head: not sure
    findings = run_checks(cfg, checks=['evaluator'])
    assert [(f.key, f.severity) for f in findings] == [
        ('val_evaluator.metric', 'warning')]


def test_ground_truth_loaded_before_resize_for_a_gt_reading_metric(demo):
    # PRCurveMetric and mmdet's VOCMetric score the packed gt_instances
    # against predictions in the original image; resized boxes miss.
    cfg = demo()
    pipeline = cfg.val_dataloader.dataset.pipeline
    pipeline[1], pipeline[2] = pipeline[2], pipeline[1]  # load, resize
    assert not run_checks(cfg, checks=['evaluator'])  # CocoMetric: its json
    for metric in ('PRCurveMetric', 'VOCMetric'):
        cfg.val_evaluator = [dict(type='CocoMetric', ann_file=osp.join(
            cfg.val_dataloader.dataset.data_root, 'annotations/val.json')),
            dict(type=metric)]
        findings = run_checks(cfg, checks=['evaluator'])
        assert [(f.key, f.severity) for f in findings] == [
            ('val_dataloader.dataset.pipeline', 'error')]
        assert f'val_evaluator[1] ({metric})' in findings[0].message
        assert 'step 1) before resizing (step 2)' in findings[0].message
    pipeline[1], pipeline[2] = pipeline[2], pipeline[1]
    assert not run_checks(cfg, checks=['evaluator'])


def test_ground_truth_before_resize_inside_wrappers(demo):
    # The resize can sit inside TestTimeAug, ProposalBroadcaster or a
    # MultiImageMixDataset's own pipeline: the check looked at the
    # top-level steps of the innermost dataset only.
    cfg = demo()
    cfg.val_evaluator = dict(type='VOCMetric')
    ds = cfg.val_dataloader.dataset
    load = dict(type='LoadAnnotations', with_bbox=True)
    resize = dict(type='Resize', scale=(64, 64), keep_ratio=True)
    tta = dict(type='TestTimeAug', transforms=[
        [resize], [dict(type='RandomFlip', prob=0.)],
        [dict(type='PackDetInputs')]])
    ds.pipeline = [dict(type='LoadImageFromFile'), load, tta]
    findings = run_checks(cfg, checks=['evaluator'])
    assert [(f.key, f.severity) for f in findings] == [
        ('val_dataloader.dataset.pipeline', 'error')]
    assert 'step 1) before resizing (step 2)' in findings[0].message
    # mmdet's own TTA pipelines load annotations inside, after the resize.
    tta['transforms'].insert(2, [load])
    ds.pipeline = [dict(type='LoadImageFromFile'), tta]
    assert not run_checks(cfg, checks=['evaluator'])
    ds.pipeline = [dict(type='LoadImageFromFile'), load, dict(
        type='ProposalBroadcaster', transforms=[resize]),
        dict(type='PackDetInputs')]
    assert len(run_checks(cfg, checks=['evaluator'])) == 1
    # A mixing wrapper resizes what its dataset loaded.
    ds.pipeline = [dict(type='LoadImageFromFile'), load]
    cfg.val_dataloader.dataset = dict(
        type='MultiImageMixDataset', dataset=ds,
        pipeline=[resize, dict(type='PackDetInputs')])
    findings = run_checks(cfg, checks=['evaluator'])
    assert [f.key for f in findings] == [
        'val_dataloader.dataset.dataset.pipeline']
    assert ('(step 1) before val_dataloader.dataset.pipeline resizes '
            '(step 0)') in findings[0].message
    cfg.val_dataloader.dataset.pipeline = [dict(type='PackDetInputs')]
    cfg.val_dataloader.dataset.dataset.pipeline = [
        dict(type='LoadImageFromFile'), resize, load]
    assert not run_checks(cfg, checks=['evaluator'])


def test_classwise_on_single_class(demo):
    cfg = demo({'val_dataloader.dataset.metainfo': dict(classes=('rbc', ))})
    findings = run_checks(cfg, checks=['evaluator'])
    assert [(f.key, f.severity) for f in findings] == [
        ('val_evaluator.classwise', 'info')]


def test_everything_filtered_out(demo):
    cfg = demo({'train_dataloader.dataset.filter_cfg.min_size': 10000})
    findings = run_checks(cfg, checks=['empty_data'])
    assert [(f.key, f.severity) for f in findings] == [
        ('train_dataloader.dataset', 'error')]
    assert '0 images' in findings[0].message


def test_class_spelled_unlike_annotations(demo):
    cfg = demo({'train_dataloader.dataset.metainfo':
                dict(classes=('rbc', 'wbc', 'platlet'))})
    found = _found(run_checks(cfg, checks=['empty_data']), 'empty_data',
                   'error')
    assert [f.key for f in found] == [
        'train_dataloader.dataset.metainfo.classes']
    assert "['platlet']" in found[0].message


def test_skip_data_and_unknown_check(demo):
    cfg = demo({'train_dataloader.dataset.filter_cfg.min_size': 10000})
    assert run_checks(cfg, checks=['empty_data'], skip_data=True) == []
    with pytest.raises(ValueError, match='unknown config checks'):
        run_checks(cfg, checks=['nope'])


def test_broken_part_becomes_a_finding(demo):
    cfg = demo({'model.backbone.type': 'NoSuchBackbone'})
    findings = run_checks(cfg, checks=['feature_strides'])
    assert [(f.check, f.severity) for f in findings] == [
        ('feature_strides', 'error')]
    assert 'could not run' in findings[0].message


def test_k_shot_unpicked_instances_as_background(demo, tmp_path):
    """A 1-shot split of the smears keeps most cells as ignored."""
    cfg = demo()
    cfg.train_dataloader.dataset = dict(
        type='KShotDataset', shots=1, seed=0,
        split_file=str(tmp_path / 'split.json'),
        dataset=cfg.train_dataloader.dataset)
    found = _found(run_checks(cfg, checks=['ignored_negatives']),
                   'ignored_negatives', 'warning')
    assert [f.key for f in found] == [
        'model.train_cfg.rpn.assigner.ignore_iof_thr']
    assert 'against 3 annotated ones' in found[0].message
    assert ('model.train_cfg.rpn.assigner and '
            'model.train_cfg.rcnn.assigner') in found[0].fix
    # Leaving them out of the negatives silences it, stage by stage.
    cfg.merge_from_dict({'model.train_cfg.rcnn.assigner.ignore_iof_thr': 0.5})
    found = run_checks(cfg, checks=['ignored_negatives'])
    assert [f.key for f in found] == [
        'model.train_cfg.rpn.assigner.ignore_iof_thr']
    cfg.merge_from_dict({'model.train_cfg.rpn.assigner.ignore_iof_thr': 0.5})
    assert run_checks(cfg, checks=['ignored_negatives']) == []
