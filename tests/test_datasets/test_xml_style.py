"""StrictXMLDataset on tiny VOC folders written by the test."""
import os.path as osp

import cv2
import numpy as np
import pytest

from rcnn_plugin.datasets import StrictXMLDataset

CLASSES = ('cell', 'dot')


def _write_voc(root, objects_per_image):
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for i, objects in enumerate(objects_per_image):
        img_id = f'img_{i}'
        ids.append(img_id)
        cv2.imwrite(str(root / 'JPEGImages' / f'{img_id}.jpg'),
                    np.zeros((40, 60, 3), np.uint8))
        objs = ''.join(
            f'<object><name>{n}</name><difficult>{d}</difficult><bndbox>'
            f'<xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>'
            f'<ymax>{b[3]}</ymax></bndbox></object>'
            for n, b, d in objects)
        (root / 'Annotations' / f'{img_id}.xml').write_text(
            '<annotation><size><width>60</width><height>40</height>'
            f'<depth>3</depth></size>{objs}</annotation>')
    (root / 'ImageSets/Main/all.txt').write_text('\n'.join(ids) + '\n')


def _build(root, **kwargs):
    ds = StrictXMLDataset(
        data_root=str(root),
        ann_file='ImageSets/Main/all.txt',
        data_prefix=dict(sub_data_root=''),
        metainfo=dict(classes=CLASSES),
        pipeline=[],
        **kwargs)
    ds.full_init()
    return ds


def test_boxes_labels_and_difficult(tmp_path):
    _write_voc(tmp_path, [[('cell', (11, 11, 31, 21), 0),
                           ('dot', (2, 3, 6, 8), 1)]])
    ds = _build(tmp_path)
    (info, ) = [ds.get_data_info(0)]
    assert info['img_path'] == osp.join(str(tmp_path), 'JPEGImages',
                                        'img_0.jpg')
    assert [i['bbox'] for i in info['instances']] == [[10, 10, 30, 20],
                                                      [1, 2, 5, 7]]
    assert [i['bbox_label'] for i in info['instances']] == [0, 1]
    assert [i['ignore_flag'] for i in info['instances']] == [0, 1]


def test_degenerate_boxes_are_dropped_and_counted(tmp_path, caplog):
    _write_voc(tmp_path, [[('cell', (5, 5, 5, 9), 0),
                           ('cell', (9, 9, 4, 12), 0),
                           ('dot', (1, 1, 9, 9), 0)],
                          [('cell', (2, 2, 8, 8), 0)]])
    ds = _build(tmp_path)
    assert len(ds) == 2
    assert len(ds.get_data_info(0)['instances']) == 1
    xml = osp.join(str(tmp_path), 'Annotations', 'img_0.xml')
    assert ds.dropped_boxes == {xml: 2}


def test_unknown_class_names_the_file(tmp_path):
    _write_voc(tmp_path, [[('cell', (1, 1, 9, 9), 0)],
                          [('Cell', (1, 1, 9, 9), 0)]])
    with pytest.raises(ValueError, match=r"img_1\.xml: class 'Cell'"):
        _build(tmp_path)


def test_image_without_objects_is_kept_in_test_mode(tmp_path):
    _write_voc(tmp_path, [[], [('dot', (1, 1, 9, 9), 0)]])
    ds = _build(tmp_path, test_mode=True)
    assert len(ds) == 2
    assert ds.get_data_info(0)['instances'] == []
