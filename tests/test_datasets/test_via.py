"""VIADataset on generated VIA files and on the real balloon dataset."""
import json
import os.path as osp

import numpy as np
import pytest
from mmdet.datasets.transforms import LoadAnnotations
from PIL import Image

from rcnn_plugin.datasets import (
    AnnotationError,
    VIADataset,
    class_instance_counts,
    native,
)

from conftest import REPO

BALLOON = osp.join(REPO, '..', 'shared', 'datasets', 'balloon')
TRIANGLE = dict(name='polygon', all_points_x=[10, 30, 10],
                all_points_y=[5, 5, 25])


def _write(root, regions_by_file, project=False, size=(40, 30)):
    data = {}
    for fname, regions in regions_by_file.items():
        Image.new('RGB', size).save(root / fname)
        data[fname + '123'] = dict(filename=fname, size=123, regions=regions,
                                   file_attributes={})
    if project:
        data = dict(_via_settings={}, _via_img_metadata=data)
    (root / 'via.json').write_text(json.dumps(data))


def _build(root, classes=('balloon', ), **kwargs):
    return VIADataset(data_root=str(root), ann_file='via.json',
                      metainfo=dict(classes=classes), pipeline=[], **kwargs)


def test_polygon_rect_circle_and_negative(tmp_path):
    _write(tmp_path, {
        'a.jpg': {'0': dict(shape_attributes=TRIANGLE,
                            region_attributes={}),
                  '1': dict(shape_attributes=dict(name='rect', x=1, y=2,
                                                  width=5, height=6),
                            region_attributes={})},
        'b.jpg': [dict(shape_attributes=dict(name='circle', cx=20, cy=15,
                                             r=4), region_attributes={})],
        'c.jpg': {}})
    ds = _build(tmp_path)
    assert len(ds) == 3
    a = ds.get_data_info(0)
    assert (a['width'], a['height'], a['img_id']) == (40, 30, 'a.jpg')
    assert [i['bbox'] for i in a['instances']] == [[10, 5, 30, 25],
                                                   [1, 2, 6, 8]]
    assert a['instances'][0]['mask'] == [[10, 5, 30, 5, 10, 25]]
    assert a['instances'][1]['mask'] == [[1, 2, 6, 2, 6, 8, 1, 8]]
    circle = ds.get_data_info(1)['instances'][0]
    assert circle['bbox'] == pytest.approx([16, 11, 24, 19])
    assert ds.get_data_info(2)['instances'] == []


def test_point_regions_are_counted_and_logged(tmp_path, monkeypatch):
    _write(tmp_path, {'a.jpg': [
        dict(shape_attributes=TRIANGLE, region_attributes={}),
        dict(shape_attributes=dict(name='point', cx=3, cy=4),
             region_attributes={})]})
    logged = []
    monkeypatch.setattr(native, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    ds = _build(tmp_path)
    assert len(ds.get_data_info(0)['instances']) == 1
    assert ds.skipped_shapes == {'point': 1}
    assert any("skipped 1 shape(s)" in m and "'point': 1" in m
               for m in logged), logged


def test_masks_load_with_mmdet_loader(tmp_path):
    _write(tmp_path, {'a.jpg': [dict(shape_attributes=TRIANGLE,
                                     region_attributes={})]})
    info = _build(tmp_path).get_data_info(0)
    results = dict(info, ori_shape=(30, 40))
    for poly2mask in (False, True):
        out = LoadAnnotations(with_mask=True, poly2mask=poly2mask)(
            dict(results))
        assert len(out['gt_masks']) == 1
        area = out['gt_masks'].areas[0]
        assert area == pytest.approx(200, rel=0.15)  # triangle 20x20/2
    assert np.allclose(out['gt_bboxes'].tensor.numpy(), [[10, 5, 30, 25]])


def test_class_attribute_and_project_file(tmp_path):
    regions = [dict(shape_attributes=TRIANGLE,
                    region_attributes=dict(kind='b')),
               dict(shape_attributes=TRIANGLE,
                    region_attributes=dict(kind={'a': True, 'b': False}))]
    _write(tmp_path, {'a.jpg': regions}, project=True)
    ds = _build(tmp_path, classes=('a', 'b'), class_attribute='kind')
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [
        1, 0]
    # 'b ' (a space typed in VIA's attribute box) is class b, for the
    # folder detector and the reader alike
    regions.append(dict(shape_attributes=TRIANGLE,
                        region_attributes=dict(kind='b ')))
    _write(tmp_path, {'a.jpg': regions}, project=True)
    from rcnn_plugin.datasets import detect_layout
    assert detect_layout(str(tmp_path)).classes == ('a', 'b')
    ds = _build(tmp_path, classes=('a', 'b'), class_attribute='kind')
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [
        1, 0, 1]


def test_unknown_class_error_and_skip(tmp_path):
    regions = [dict(shape_attributes=TRIANGLE,
                    region_attributes=dict(kind='a')),
               dict(shape_attributes=TRIANGLE,
                    region_attributes=dict(kind='zebra'))]
    _write(tmp_path, {'a.jpg': regions})
    with pytest.raises(AnnotationError, match=r"via\.json \['a\.jpg123'\]"
                       r"\[regions\]\[1\].*'zebra' is not in"):
        _build(tmp_path, classes=('a', ), class_attribute='kind')
    ds = _build(tmp_path, classes=('a', ), class_attribute='kind',
                unknown_classes='skip')
    assert len(ds.get_data_info(0)['instances']) == 1
    assert ds.unknown_class_counts == {'zebra': 1}


@pytest.mark.parametrize('shape,match', [
    (dict(name='polygon', all_points_x=[1, 2], all_points_y=[1, 2]),
     'at least 3 points'),
    (dict(name='polygon', all_points_x=[1, 2, 3], all_points_y=[1, 2]),
     'at least 3 points'),
    (dict(name='polygon', all_points_x=[1, 'a', 3], all_points_y=[1, 2, 3]),
     'finite numbers'),
    (dict(name='rect', x=1, y=2), "lacks 'width'"),
    (dict(name='spline'), "unsupported shape 'spline'"),
])
def test_bad_shapes_name_the_key(tmp_path, shape, match):
    _write(tmp_path, {'a.jpg': [dict(shape_attributes=shape,
                                     region_attributes={})]})
    with pytest.raises(AnnotationError,
                       match=r"\[regions\]\[0\]\[shape_attributes\]: .*" +
                       match):
        _build(tmp_path)


def test_missing_image_names_json_key(tmp_path):
    _write(tmp_path, {'a.jpg': []})
    (tmp_path / 'a.jpg').unlink()
    with pytest.raises(AnnotationError,
                       match=r"via\.json \['a\.jpg123'\]: refers to image"):
        _build(tmp_path)


def test_several_classes_need_class_attribute(tmp_path):
    _write(tmp_path, {'a.jpg': []})
    with pytest.raises(ValueError, match='set class_attribute'):
        _build(tmp_path, classes=('a', 'b'))


@pytest.mark.parametrize('split,images,polygons', [('train', 61, 255),
                                                   ('val', 13, 50)])
def test_real_balloon_counts(split, images, polygons):
    if not osp.isdir(osp.join(BALLOON, 'train')):
        pytest.skip(f'real balloon data not found at {osp.abspath(BALLOON)}'
                    ' (../shared/datasets absent)')
    ds = VIADataset(data_root=BALLOON, ann_file=f'{split}/via_region_data'
                    '.json', data_prefix=dict(img=f'{split}/'),
                    metainfo=dict(classes=('balloon', )), pipeline=[])
    assert len(ds) == images
    assert class_instance_counts(ds) == {'balloon': polygons}
    assert all(len(i['mask']) == 1 and len(i['mask'][0]) >= 6
               for k in range(len(ds))
               for i in ds.get_data_info(k)['instances'])


def test_via3_project_is_refused_clearly(tmp_path):
    (tmp_path / 'via.json').write_text(json.dumps(dict(
        project={}, config={}, attribute={}, file={}, metadata={},
        view={})))
    with pytest.raises(AnnotationError, match='VIA 3 project'):
        _build(tmp_path)


def test_utf8_bom_json_loads(tmp_path):
    # was: "is not valid JSON: Unexpected UTF-8 BOM"
    _write(tmp_path, {'a.jpg': [dict(shape_attributes=TRIANGLE,
                                     region_attributes={})]})
    text = (tmp_path / 'via.json').read_text()
    (tmp_path / 'via.json').write_text(text, encoding='utf-8-sig')
    assert class_instance_counts(_build(tmp_path)) == dict(balloon=1)
