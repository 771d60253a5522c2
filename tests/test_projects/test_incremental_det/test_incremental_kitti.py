"""kitti_yolo 1+2 configs: every split in the student's label order.

kitti_yolo numbers its classes (pedestrian, cyclist, vehicle) (obj.names);
the student of a 1+2 step numbers them old + new (vehicle, pedestrian,
cyclist). The tests on the real data skip, saying why, when
``../shared/datasets/kitti_yolo`` is absent.
"""
import collections
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, METRICS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from conftest import REPO, shrink_model

KITTI_YOLO = osp.join(REPO, '..', 'shared', 'datasets', 'kitti_yolo')
CONFIGS = osp.join(REPO, 'projects', 'IncrementalDet', 'configs')
PREFIX = 'faster-rcnn_mobilenetv2_fpn-128_'
BASE = PREFIX + 'base-training_48e_kitti-yolo-1.py'
STEP = PREFIX + 'fine-tuning_48e_kitti-yolo-1-2.py'
JOINT = PREFIX + 'joint-training_48e_kitti-yolo-1-2.py'
STEPS = sorted(osp.basename(p) for p in glob.glob(
    osp.join(CONFIGS, '*_48e_kitti-yolo-1-2.py')) if osp.basename(p) != JOINT)
KITTI_ORDER = ('pedestrian', 'cyclist', 'vehicle')
STUDENT = ('vehicle', 'pedestrian', 'cyclist')
# Boxes per label in the student's order (configs/kitti/README.md's counts:
# vehicle 229 / 50, pedestrian 89 / 33, cyclist 39 / 25).
ALL = dict(train={0: 229, 1: 89, 2: 39}, val={0: 50, 1: 33, 2: 25})


def _kitti_yolo_or_skip() -> str:
    if not osp.isdir(osp.join(KITTI_YOLO, 'labels')):
        pytest.skip('real kitti_yolo not found at '
                    f'{osp.abspath(KITTI_YOLO)} (../shared/datasets/'
                    'kitti_yolo is absent)')
    return KITTI_YOLO + '/'


def _config(name: str) -> Config:
    register_all_modules()
    init_default_scope('mmdet')
    return Config.fromfile(osp.join(CONFIGS, name))


def _dataset(name: str, split: str, pipeline: bool = False):
    """A config's dataset of ``split`` on the real kitti_yolo (the configs'
    data_root is relative to the repository root)."""
    root = _kitti_yolo_or_skip()
    ds_cfg = _config(name)[f'{split}_dataloader'].dataset
    ds_cfg.dataset.data_root = root  # every split is wrapped
    if not pipeline:
        ds_cfg.dataset.pipeline = []
    return DATASETS.build(ds_cfg)


def _histogram(ds) -> tuple:
    """Boxes per label, and ignored boxes per label."""
    labelled, ignored = collections.Counter(), collections.Counter()
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            counts = ignored if inst.get('ignore_flag') else labelled
            counts[inst['bbox_label']] += 1
    return dict(labelled), dict(ignored)


@pytest.mark.parametrize('name,split,classes,labelled,ignored', [
    # The previous model: vehicle only; pedestrians and cyclists ignored.
    (BASE, 'train', ('vehicle', ), {0: 229}, {-1: 89 + 39}),
    (BASE, 'val', ('vehicle', ), {0: 50}, {-1: 33 + 25}),
    (BASE, 'test', ('vehicle', ), {0: 50}, {-1: 33 + 25}),
    # A step: new labels only (the 229 vehicles dropped), evaluated on all.
    (STEP, 'train', STUDENT, {1: 89, 2: 39}, {}),
    (STEP, 'val', STUDENT, ALL['val'], {}),
    (STEP, 'test', STUDENT, ALL['val'], {}),
    # The upper bound: every label, in the student's order too.
    (JOINT, 'train', STUDENT, ALL['train'], {}),
    (JOINT, 'val', STUDENT, ALL['val'], {}),
    (JOINT, 'test', STUDENT, ALL['val'], {}),
])
def test_real_label_histograms_in_the_students_order(name, split, classes,
                                                     labelled, ignored):
    ds = _dataset(name, split)
    assert ds.metainfo['classes'] == classes
    assert ds.source.metainfo['classes'] == KITTI_ORDER
    assert _histogram(ds) == (labelled, ignored)
    if name == STEP and split == 'train':
        assert ds.num_old_labels == 229


@pytest.mark.parametrize('split', ['train', 'val'])
def test_real_boxes_keep_their_class_name(split):
    """Label k of the wrapped data is the raw data's STUDENT[k], box for
    box (the joint config's data; a step's val / test are the same)."""
    ds = _dataset(JOINT, split)
    raw = ds.source
    for i in range(len(ds)):
        got = ds.get_data_info(i)['instances']
        want = raw.get_data_info(i)['instances']
        assert [g['bbox'] for g in got] == [w['bbox'] for w in want]
        assert [STUDENT[g['bbox_label']] for g in got] == \
            [KITTI_ORDER[w['bbox_label']] for w in want]


@pytest.mark.parametrize('name', STEPS + [JOINT])
def test_every_kitti_1_2_config_uses_the_students_order(name):
    """Without the data: the wrappers' classes, the model's and the
    metric's old classes."""
    cfg = _config(name)
    assert cfg.model.roi_head.bbox_head.num_classes == 3
    if name != JOINT:
        assert cfg.model.old_classes == ('vehicle', )
        assert cfg.model.new_classes == ('pedestrian', 'cyclist')
        assert cfg.model.teacher_ckpt == \
            'work_dirs/incremental/kitti-yolo-1-2/base/epoch_48.pth'
        train = cfg.train_dataloader.dataset
        assert train.type == 'NewClassDataset'
        assert train.old_classes + train.new_classes == STUDENT
    else:
        assert cfg.train_dataloader.dataset.classes == STUDENT
    for split in ('val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert (ds.type, tuple(ds.classes)) == ('ClassSubsetDataset',
                                                STUDENT)
        metric = cfg[f'{split}_evaluator'][0]
        assert metric.type == 'IncrementalVOCMetric'
        assert metric.old_classes == ('vehicle', )
    assert cfg.train_cfg.max_epochs == 48
    assert cfg.train_dataloader.batch_size == 4


def test_real_evaluation_scores_the_students_labels():
    """A student that finds every box, labelled in its own order, scores
    1.0 on every class with the step's test split and evaluators; read in
    kitti_yolo's order (no wrapper) its vehicles would be pedestrians."""
    ds = _dataset(STEP, 'test', pipeline=True)
    cfg = _config(STEP)
    samples = [ds[i]['data_samples'] for i in range(4)]
    metrics = [METRICS.build(m) for m in cfg.test_evaluator]
    for metric in metrics:
        metric.dataset_meta = ds.metainfo
        for sample in samples:
            gt = sample.gt_instances
            pred = dict(bboxes=gt.bboxes.tensor, labels=gt.labels,
                        scores=torch.ones(len(gt.labels)))
            metric.process({}, [dict(sample.to_dict(), pred_instances=pred)])
    voc = metrics[0].evaluate(len(samples))
    assert {k: voc[f'incremental/{k}'] for k in (
        'old_AP50', 'new_AP50', 'all_AP50')} == dict(
        old_AP50=1.0, new_AP50=1.0, all_AP50=1.0)
    assert voc['incremental/AP50_vehicle'] == 1.0
    assert metrics[1].evaluate(len(samples))['coco/bbox_mAP_50'] == 1.0
    # The same predictions scored against the raw order miss the vehicles.
    raw = METRICS.build(cfg.test_evaluator[0])
    raw.dataset_meta = ds.source.metainfo
    for sample in samples:
        raw_labels = torch.tensor([
            KITTI_ORDER.index(STUDENT[lab]) for lab in sample.gt_instances
            .labels.tolist()], dtype=torch.long)
        raw_sample = sample.to_dict()
        raw_sample['gt_instances'] = dict(
            raw_sample['gt_instances'], labels=raw_labels)
        gt = sample.gt_instances
        raw.process({}, [dict(raw_sample, pred_instances=dict(
            bboxes=gt.bboxes.tensor, labels=gt.labels,
            scores=torch.ones(len(gt.labels))))])
    assert raw.evaluate(len(samples))['incremental/AP50_vehicle'] < 0.5


def test_real_base_model_evaluators_with_ignored_classes():
    """The base model's val split keeps pedestrians and cyclists as
    ignored boxes (label -1): both evaluators take them."""
    ds = _dataset(BASE, 'val', pipeline=True)
    cfg = _config(BASE)
    samples = [ds[i]['data_samples'] for i in range(3)]
    assert any(len(s.ignored_instances) for s in samples)
    metrics = [METRICS.build(m) for m in cfg.val_evaluator]
    for metric in metrics:
        metric.dataset_meta = ds.metainfo
        for sample in samples:
            gt = sample.gt_instances
            metric.process({}, [dict(sample.to_dict(), pred_instances=dict(
                bboxes=gt.bboxes.tensor, labels=gt.labels,
                scores=torch.ones(len(gt.labels))))])
    assert metrics[0].evaluate(len(samples))['pascal_voc/mAP'] == 1.0
    assert metrics[1].evaluate(len(samples))['coco/bbox_mAP_50'] == 1.0


def test_real_step_pipeline_into_a_loss_step():
    """The `all` config's training data (real pipeline) into a shrunk
    student with a random teacher: new labels 1 and 2 only, every loss
    finite."""
    name = PREFIX + 'all_48e_kitti-yolo-1-2.py'
    ds = _dataset(name, 'train', pipeline=True)
    labelled = [i for i in range(len(ds)) if ds.get_cat_ids(i)]
    assert len(labelled) == 28  # 12 of 40: no pedestrian or cyclist
    batch = pseudo_collate([ds[i] for i in labelled[:2]])
    labels = torch.cat([s.gt_instances.labels
                        for s in batch['data_samples']])
    assert len(labels) and set(labels.tolist()) <= {1, 2}
    # Native scale: kitti_yolo's images are about 1242x375 (Resize keeps
    # the ratio within that size).
    assert all(img.shape[1] <= 375 and img.shape[2] <= 1242
               and img.shape[2] > 1000 for img in batch['inputs'])
    model_cfg = shrink_model(_config(name).model)
    model_cfg.pseudo_label.score_thr = 0.0  # a random teacher is unsure
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert {'loss_distill_cls', 'loss_distill_reg', 'loss_distill_rpn',
            'loss_distill_feat', 'loss_cls'} <= set(losses)
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)


def test_real_box_replay_of_vehicle_crops(tmp_path):
    """abr: a memory cut from the base config's training data holds
    vehicles only, and the abr config's pipeline replays them as label 0
    beside the new labels 1 and 2."""
    from projects.IncrementalDet.incremental_det.replay_memory import (
        build_replay_memory,
    )
    base = _dataset(BASE, 'train')
    memory = build_replay_memory(base, str(tmp_path / 'memory'), budget=5)
    assert memory.classes == ('vehicle', )
    assert memory.counts() == dict(vehicle=5)
    root = _kitti_yolo_or_skip()
    cfg = _config(PREFIX + 'abr_48e_kitti-yolo-1-2.py')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.dataset.data_root = root
    replay = ds_cfg.dataset.pipeline[2]
    assert replay.type == 'BoxReplay'
    replay.update(memory=str(tmp_path / 'memory'), prob=1.0, seed=0)
    ds = DATASETS.build(ds_cfg)
    found = 0
    for i in range(3):
        item = ds[i]['data_samples']
        labels = item.gt_instances.labels.numpy()
        new = ds.get_data_info(i)['instances']
        assert list(labels[:len(new)]) == [n['bbox_label'] for n in new]
        replayed = labels[len(new):]
        assert np.all(replayed == 0)
        found += len(replayed)
    assert found
