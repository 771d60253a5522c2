import json
import os.path as osp

import pytest

from rcnn_plugin.datasets import SyntheticCellsDataset, make_synthetic_cells


def test_deterministic_and_valid(tmp_path):
    a = make_synthetic_cells(str(tmp_path / 'a'), 3, 2, 96, seed=4)
    b = make_synthetic_cells(str(tmp_path / 'b'), 3, 2, 96, seed=4)
    for split in ('train', 'val'):
        ja, jb = json.load(open(a[split])), json.load(open(b[split]))
        assert ja == jb
        assert len(ja['images']) == (3 if split == 'train' else 2)
        for ann in ja['annotations']:
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= 96 and y + h <= 96
            assert ann['category_id'] in (1, 2, 3)
        for img in ja['images']:
            assert osp.isfile(osp.join(tmp_path, 'a', img['file_name']))
    assert open(osp.join(tmp_path, 'a', 'train/00001.jpg'), 'rb').read() \
        == open(osp.join(tmp_path, 'b', 'train/00001.jpg'), 'rb').read()
    # the seed is used: another one draws other cells
    c = make_synthetic_cells(str(tmp_path / 'c'), 3, 2, 96, seed=5)
    assert json.load(open(c['train']))['annotations'] != json.load(
        open(a['train']))['annotations']


def test_too_small_image_is_refused(tmp_path):
    with pytest.raises(ValueError, match='img_size'):
        make_synthetic_cells(str(tmp_path), 1, 1, img_size=32)


def test_dataset_reads_it(synthetic_cells):
    ds = SyntheticCellsDataset(
        data_root=synthetic_cells, ann_file='annotations/train.json',
        data_prefix=dict(img=''), pipeline=[])
    ds.full_init()
    assert 0 < len(ds) <= 8
    assert ds.metainfo['classes'] == ('rbc', 'wbc', 'platelet')
    labels = {i['bbox_label'] for k in range(len(ds))
              for i in ds.get_data_info(k)['instances']}
    assert labels <= {0, 1, 2} and 0 in labels
