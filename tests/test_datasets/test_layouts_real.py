"""detect_layout on the real datasets in ../shared/datasets (skipped if
absent): each is found with no flag but the path and read correctly."""
import os.path as osp

import pytest
from mmdet.registry import DATASETS

from rcnn_plugin.datasets import (
    class_instance_counts,
    detect_layout,
    stratified_split,
)

from conftest import REPO

SHARED = osp.join(REPO, '..', 'shared', 'datasets')


def _root_or_skip(name):
    root = osp.join(SHARED, name)
    if not osp.isdir(root):
        pytest.skip(f'real {name} not found at {osp.abspath(root)} '
                    '(../shared/datasets is absent)')
    return root


def _build(layout, split):
    return DATASETS.build(dict(layout.splits[split], pipeline=[]))


def test_bccd_voc_with_image_sets():
    layout = detect_layout(_root_or_skip('bccd'))
    assert layout.fmt == 'voc'
    assert sorted(layout.splits) == ['test', 'train', 'trainval', 'val']
    assert (layout.train_split, layout.val_split) == ('train', 'val')
    assert layout.classes == ('Platelets', 'RBC', 'WBC')
    assert layout.class_source == 'the annotations (364 files)'
    assert not layout.has_masks
    ds = _build(layout, 'train')
    assert len(ds) == 205
    assert class_instance_counts(ds) == dict(Platelets=209, RBC=2381,
                                             WBC=214)
    assert len(_build(layout, 'val')) == 87


def test_balloon_via_polygons():
    layout = detect_layout(_root_or_skip('balloon'))
    assert (layout.fmt, layout.train_split, layout.val_split) == (
        'via', 'train', 'val')
    assert layout.has_masks
    assert layout.classes == ('object', )
    assert any('no class attribute' in n for n in layout.notes)
    named = detect_layout(_root_or_skip('balloon'), classes=['balloon'])
    assert (named.classes, named.class_source) == (('balloon', ),
                                                   '--classes')
    ds = _build(named, 'train')
    assert len(ds) == 61
    assert class_instance_counts(ds) == dict(balloon=255)
    assert 'mask' in ds.get_data_info(0)['instances'][0]


def test_kitti_yolo_cvat_export():
    layout = detect_layout(_root_or_skip('kitti_yolo'))
    assert (layout.fmt, layout.train_split, layout.val_split) == (
        'yolo', 'train', 'val')
    assert layout.classes == ('pedestrian', 'cyclist', 'vehicle')
    assert layout.class_source == 'labels/train/obj.names'
    assert any("['images/test']" in n for n in layout.notes)
    val = _build(layout, 'val')
    assert len(val) == 15
    assert class_instance_counts(val) == dict(pedestrian=33, cyclist=25,
                                              vehicle=50)


def test_bcd_csv_and_a_stratified_val_split(tmp_path):
    layout = detect_layout(_root_or_skip('bcd'))
    assert (layout.fmt, list(layout.splits), layout.val_split) == (
        'csv', ['all'], None)
    assert layout.classes == ('rbc', 'wbc')
    train_cfg, val_cfg = stratified_split(
        dict(layout.splits['all'], pipeline=[]), 0.2, 0, str(tmp_path))
    train, val = DATASETS.build(train_cfg), DATASETS.build(val_cfg)
    assert len(train) + len(val) == 100
    assert 15 <= len(val) <= 25
    counts = class_instance_counts(val)
    assert counts['wbc'] > 0 and counts['rbc'] > 0
    assert class_instance_counts(train)['wbc'] + counts['wbc'] == 103
