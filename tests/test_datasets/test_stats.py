import pytest
from mmengine.dataset import RepeatDataset

from rcnn_plugin.datasets import (
    SyntheticCellsDataset,
    class_instance_counts,
    count_images_without_instances,
)


def _dataset(root, **kwargs):
    return SyntheticCellsDataset(
        data_root=root, ann_file='annotations/train.json',
        data_prefix=dict(img=''), pipeline=[], **kwargs)


def test_counts_match_the_annotations(synthetic_cells):
    import json
    import os.path as osp
    coco = json.load(open(osp.join(synthetic_cells,
                                   'annotations/train.json')))
    names = {c['id']: c['name'] for c in coco['categories']}
    expected = {n: 0 for n in ('rbc', 'wbc', 'platelet')}
    for ann in coco['annotations']:
        expected[names[ann['category_id']]] += 1
    ds = _dataset(synthetic_cells, filter_cfg=None)
    assert class_instance_counts(ds) == expected
    assert class_instance_counts(RepeatDataset(ds, times=2)) == expected
    assert count_images_without_instances(ds) == sum(
        1 for img in coco['images']
        if not any(a['image_id'] == img['id'] for a in coco['annotations']))


def test_absent_class_counts_zero_and_bad_label_raises(synthetic_cells):
    ds = _dataset(synthetic_cells, metainfo=dict(classes=('rbc', 'tumour')),
                  serialize_data=False)
    counts = class_instance_counts(ds)
    assert list(counts) == ['rbc', 'tumour'] and counts['tumour'] == 0
    ds.data_list[0]['instances'].append(
        dict(bbox=[0, 0, 1, 1], bbox_label=7, ignore_flag=0))
    with pytest.raises(ValueError, match='label 7'):
        class_instance_counts(ds)
