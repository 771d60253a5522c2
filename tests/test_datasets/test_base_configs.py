"""Each dataset base config loads and builds on a tiny generated dataset."""
import glob
import json
import os.path as osp

import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from PIL import Image

import rcnn_plugin  # noqa: F401

from conftest import REPO

BASES = sorted(glob.glob(osp.join(REPO, 'configs', '_base_', 'datasets',
                                  '*.py')))


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (40, 30)).save(path)


def _yolo(root):
    for split in ('train', 'val'):
        _img(root / f'images/{split}/obj_train_data/a.png')
        lab = root / f'labels/{split}/obj_train_data'
        lab.mkdir(parents=True)
        (lab / 'a.txt').write_text('0 0.5 0.5 0.5 0.5\n')
        (root / f'labels/{split}/obj.names').write_text('car\n')


def _via(root):
    tri = dict(name='polygon', all_points_x=[1, 20, 5],
               all_points_y=[1, 5, 20])
    for split in ('train', 'val'):
        _img(root / split / 'a.jpg')
        (root / split / 'via_region_data.json').write_text(json.dumps({
            'a': dict(filename='a.jpg', regions=[dict(
                shape_attributes=tri, region_attributes={})])}))


def _labelme(root):
    for split in ('train', 'val'):
        _img(root / split / 'a.jpg')
        (root / split / 'a.json').write_text(json.dumps(dict(
            imagePath='a.jpg', shapes=[dict(
                label='object', shape_type='rectangle',
                points=[[1, 1], [9, 9]])])))


def _kitti(root):
    _img(root / 'training/image_2/000001.png')
    (root / 'training/label_2').mkdir(parents=True)
    (root / 'training/label_2/000001.txt').write_text(
        ''.join(f'{c} 0 0 0 1 1 20 20 1 1 1 1 1 1 0\n' for c in (
            'Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting',
            'Cyclist', 'Tram', 'Misc')))
    (root / 'ImageSets').mkdir()
    for split in ('train', 'val'):
        (root / 'ImageSets' / f'{split}.txt').write_text('000001\n')


def _bccd(root):
    _img(root / 'JPEGImages/a.jpg')
    (root / 'Annotations').mkdir()
    (root / 'Annotations/a.xml').write_text(
        '<annotation><size><width>40</width><height>30</height>'
        '<depth>3</depth></size><object><name>WBC</name>'
        '<difficult>0</difficult><bndbox><xmin>2</xmin><ymin>3</ymin>'
        '<xmax>20</xmax><ymax>25</ymax></bndbox></object></annotation>')
    (root / 'ImageSets/Main').mkdir(parents=True)
    for split in ('train', 'val', 'test'):
        (root / f'ImageSets/Main/{split}.txt').write_text('a\n')


MAKERS = dict(bccd_detection=_bccd, yolo_detection=_yolo, via_instance=_via,
              labelme_instance=_labelme, kitti_detection=_kitti)


def test_every_base_has_a_fixture():
    assert sorted(MAKERS) == sorted(
        osp.splitext(osp.basename(p))[0] for p in BASES)


@pytest.mark.parametrize('path', BASES, ids=[osp.basename(p) for p in BASES])
def test_base_builds(path, tmp_path):
    register_all_modules()
    cfg = Config.fromfile(path)
    train = cfg.train_dataloader.dataset
    assert train.filter_cfg.filter_empty_gt is False  # negatives kept
    MAKERS[osp.splitext(osp.basename(path))[0]](tmp_path)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        ds_cfg = loader.dataset.to_dict()
        ds_cfg['data_root'] = str(tmp_path) + '/'
        ds = DATASETS.build(ds_cfg)
        assert len(ds) == 1
        item = ds[0]
        assert len(item['data_samples'].gt_instances) >= 1
