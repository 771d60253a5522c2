"""Round trips: our readers -> dataset_to_coco -> pycocotools + CocoDataset.
"""
import json
import os.path as osp
import runpy

import numpy as np
import pytest
from mmdet.datasets import CocoDataset
from PIL import Image
from pycocotools.coco import COCO

from rcnn_plugin.datasets import (
    KittiDataset,
    LabelMeDataset,
    StrictXMLDataset,
    VIADataset,
    YOLODataset,
    dataset_to_coco,
    polygon_area,
)

from conftest import REPO


def _roundtrip(ds, root):
    out = str(root / 'coco.json')
    summary = dataset_to_coco(ds, out, img_root=str(root), progress=False)
    coco = COCO(out)
    assert len(coco.getImgIds()) == len(ds) == summary['images']
    for ann in coco.loadAnns(coco.getAnnIds()):
        if 'segmentation' in ann:
            img = coco.loadImgs(ann['image_id'])[0]
            mask = coco.annToMask(ann)
            assert mask.shape == (img['height'], img['width'])
            assert mask.sum() == pytest.approx(ann['area'], rel=0.3, abs=8)
    back = CocoDataset(data_root=str(root), ann_file=out,
                       data_prefix=dict(img=''), test_mode=True, pipeline=[],
                       metainfo=dict(classes=ds.metainfo['classes']))
    assert len(back) == len(ds)
    for i in range(len(ds)):
        ours, theirs = ds.get_data_info(i), back.get_data_info(i)
        assert osp.normpath(theirs['img_path']) == osp.normpath(
            ours['img_path'])
        kept = [x for x in ours['instances'] if x['bbox_label'] >= 0]
        assert len(theirs['instances']) == len(kept)
        for a, b in zip(kept, theirs['instances']):
            assert b['bbox'] == pytest.approx(a['bbox'])
            assert b['bbox_label'] == a['bbox_label']
            assert b['ignore_flag'] == a['ignore_flag']
            if 'mask' in a:
                assert len(b['mask']) == len(a['mask'])
                for pb, pa in zip(b['mask'], a['mask']):
                    assert np.allclose(pb, pa)
    return summary, json.load(open(out))


def test_polygon_area():
    assert polygon_area([[0, 0, 4, 0, 4, 3]]) == 6
    assert polygon_area([[0, 0, 2, 0, 2, 2, 0, 2], [5, 5, 6, 5, 6, 6]]) == 4.5


def test_yolo_boxes_and_polygons(tmp_path):
    (tmp_path / 'd').mkdir()
    for name in ('a', 'b'):
        Image.new('RGB', (100, 50)).save(tmp_path / 'd' / f'{name}.png')
    (tmp_path / 'd' / 'a.txt').write_text(
        '0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.5 0.2 0.3 0.8\n')
    (tmp_path / 'obj.names').write_text('cat\ndog\n')
    ds = YOLODataset(data_root=str(tmp_path), data_prefix=dict(img='d'),
                     pipeline=[])
    summary, data = _roundtrip(ds, tmp_path)
    assert summary['annotations'] == 2
    assert data['images'][0]['file_name'] == 'd/a.png'
    assert [c['name'] for c in data['categories']] == ['cat', 'dog']


def test_via_masks(tmp_path):
    Image.new('RGB', (60, 40)).save(tmp_path / 'a.jpg')
    tri = dict(name='polygon', all_points_x=[10, 50, 10],
               all_points_y=[5, 5, 35])
    (tmp_path / 'via.json').write_text(json.dumps({'a': dict(
        filename='a.jpg', regions=[dict(shape_attributes=tri,
                                        region_attributes={})])}))
    ds = VIADataset(data_root=str(tmp_path), ann_file='via.json',
                    metainfo=dict(classes=('balloon', )), pipeline=[])
    _, data = _roundtrip(ds, tmp_path)
    assert data['annotations'][0]['area'] == 600


def test_labelme_group_with_two_polygons(tmp_path):
    Image.new('RGB', (60, 40)).save(tmp_path / 'a.jpg')
    shapes = [dict(label='cat', group_id=1, shape_type='polygon',
                   points=[[1, 1], [20, 1], [10, 15]]),
              dict(label='cat', group_id=1, shape_type='polygon',
                   points=[[30, 20], [50, 20], [40, 35]]),
              dict(label='dog', shape_type='rectangle',
                   points=[[5, 20], [25, 38]])]
    (tmp_path / 'a.json').write_text(json.dumps(dict(
        imagePath='a.jpg', imageWidth=60, imageHeight=40, shapes=shapes)))
    ds = LabelMeDataset(data_root=str(tmp_path), pipeline=[],
                        metainfo=dict(classes=('cat', 'dog')))
    _, data = _roundtrip(ds, tmp_path)
    assert len(data['annotations'][0]['segmentation']) == 2


def test_kitti_dontcare_left_out_attributes_kept(tmp_path):
    (tmp_path / 'image_2').mkdir()
    (tmp_path / 'label_2').mkdir()
    Image.new('RGB', (80, 40)).save(tmp_path / 'image_2' / '000001.png')
    (tmp_path / 'label_2' / '000001.txt').write_text(
        'Car 0.5 1 -1.5 10 20 50 35 1 1 1 1 1 1 0\n'
        'DontCare -1 -1 -10 60 2 70 12 -1 -1 -1 -1 -1 -1 -1\n')
    ds = KittiDataset(data_root=str(tmp_path), pipeline=[],
                      data_prefix=dict(img='image_2', ann='label_2'),
                      metainfo=dict(classes=('Car', )))
    summary, data = _roundtrip(ds, tmp_path)
    assert summary['skipped_ignore'] == 1
    assert data['annotations'][0]['attributes'] == dict(
        truncated=0.5, occluded=1, alpha=-1.5)


def test_voc_difficult_becomes_crowd(tmp_path):
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (tmp_path / sub).mkdir(parents=True)
    Image.new('RGB', (60, 40)).save(tmp_path / 'JPEGImages' / 'a.jpg')
    (tmp_path / 'Annotations' / 'a.xml').write_text(
        '<annotation><size><width>60</width><height>40</height></size>'
        + ''.join(f'<object><name>cell</name><difficult>{d}</difficult>'
                  f'<bndbox><xmin>{x}</xmin><ymin>5</ymin><xmax>{x + 9}'
                  '</xmax><ymax>20</ymax></bndbox></object>'
                  for d, x in ((0, 3), (1, 30))) + '</annotation>')
    (tmp_path / 'ImageSets/Main/all.txt').write_text('a\n')
    ds = StrictXMLDataset(data_root=str(tmp_path), pipeline=[],
                          ann_file='ImageSets/Main/all.txt',
                          data_prefix=dict(sub_data_root=''),
                          metainfo=dict(classes=('cell', )))
    _, data = _roundtrip(ds, tmp_path)
    assert [a['iscrowd'] for a in data['annotations']] == [0, 1]


def _convert_main(fmt):
    """``convert_main`` of tools/dataset_converters/<fmt>2coco.py."""
    return runpy.run_path(osp.join(
        REPO, 'tools', 'dataset_converters', f'{fmt}2coco.py'),
        run_name='not_main')['convert_main']


def test_converter_cli_on_labelme(tmp_path, capsys):
    Image.new('RGB', (30, 20)).save(tmp_path / 'a.jpg')
    (tmp_path / 'a.json').write_text(json.dumps(dict(
        imagePath='a.jpg', imageWidth=30, imageHeight=20, shapes=[dict(
            label='cat', shape_type='rectangle', points=[[2, 2], [9, 9]])])))
    main = _convert_main('labelme')
    assert main('labelme', [str(tmp_path), str(tmp_path / 'out'),
                            '--classes', 'cat']) == 0
    data = json.load(open(tmp_path / 'out' / 'all.json'))
    assert data['images'][0]['file_name'] == 'a.jpg'
    assert np.allclose(data['annotations'][0]['bbox'], [2, 2, 7, 7])
    assert 'all: 1 images, 1 annotations' in capsys.readouterr().out


def test_converter_counts_tiny_boxes_and_names_bad_files(tmp_path, capsys):
    # A box under 1 px is written and dropped by mmdet's CocoDataset when
    # it reads the file: the summary says so. A shape of another class was
    # a traceback after the earlier splits were written.
    from conftest import logged_messages
    Image.new('RGB', (640, 20)).save(tmp_path / 'a.png')
    (tmp_path / 'a.txt').write_text('0 0.5 0.5 0.001 0.5\n')
    (tmp_path / 'obj.names').write_text('cell\n')
    ds = YOLODataset(data_root=str(tmp_path), data_prefix=dict(img=''),
                     pipeline=[])
    with logged_messages(30) as messages:
        summary = dataset_to_coco(ds, str(tmp_path / 'c.json'),
                                  progress=False)
    assert summary['under_one_pixel'] == 1
    assert any('under 1 px' in m for m in messages)
    (tmp_path / 'b.json').write_text(json.dumps(dict(
        imagePath='a.png', imageWidth=640, imageHeight=20, shapes=[dict(
            label='dog', shape_type='rectangle', points=[[2, 2], [9, 9]])])))
    main = _convert_main('labelme')
    capsys.readouterr()
    assert main('labelme', [str(tmp_path), str(tmp_path / 'out'),
                            '--classes', 'cat']) == 2
    assert 'error: all:' in capsys.readouterr().err


def test_converter_refuses_to_overwrite_its_input(tmp_path, capsys):
    Image.new('RGB', (60, 40)).save(tmp_path / 'a.jpg')
    box = dict(name='rect', x=5, y=5, width=20, height=10)
    via = json.dumps({'a': dict(filename='a.jpg', regions=[dict(
        shape_attributes=box, region_attributes={})])})
    (tmp_path / 'train.json').write_text(via)
    main = _convert_main('via')
    assert main('via', [str(tmp_path), str(tmp_path), '--classes',
                        'balloon']) == 2
    assert "train split's own annotation file" in capsys.readouterr().err
    assert (tmp_path / 'train.json').read_text() == via  # untouched
