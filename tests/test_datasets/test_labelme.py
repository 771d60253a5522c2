"""LabelMeDataset on generated LabelMe JSON files."""
import json

import pytest
from PIL import Image

from rcnn_plugin.datasets import (
    AnnotationError,
    LabelMeDataset,
    check_dataset_cfg,
    native,
)


def _shape(label, points, kind='polygon', group=None):
    return dict(label=label, points=points, shape_type=kind, group_id=group,
                flags={})


def _write(root, name, shapes, size=(60, 40), image=True, sizes=True):
    if image:
        Image.new('RGB', size).save(root / f'{name}.jpg')
    data = dict(version='5.4.1', flags={}, shapes=shapes,
                imagePath=f'{name}.jpg', imageData=None)
    if sizes:
        data.update(imageWidth=size[0], imageHeight=size[1])
    (root / f'{name}.json').write_text(json.dumps(data))


def _build(root, classes=('cat', 'dog'), **kwargs):
    return LabelMeDataset(data_root=str(root), pipeline=[],
                          metainfo=dict(classes=classes), **kwargs)


def test_rectangles_polygons_circles(tmp_path):
    _write(tmp_path, 'a', [
        _shape('cat', [[30, 20], [10, 5]], 'rectangle'),
        _shape('dog', [[1, 1], [9, 1], [5, 7]]),
        _shape('dog', [[20, 20], [23, 24]], 'circle'),
        _shape('cat', [[1, 1], [5, 5]], 'line')])
    _write(tmp_path, 'b', [], sizes=False)
    ds = _build(tmp_path)
    assert len(ds) == 2
    a = ds.get_data_info(0)
    assert (a['img_id'], a['width'], a['height']) == ('a', 60, 40)
    boxes = [i['bbox'] for i in a['instances']]
    assert boxes[:2] == [[10, 5, 30, 20], [1, 1, 9, 7]]
    assert boxes[2] == pytest.approx([15, 15, 25, 25])
    assert [i['bbox_label'] for i in a['instances']] == [0, 1, 1]
    assert a['instances'][0]['mask'] == [[10, 5, 30, 5, 30, 20, 10, 20]]
    assert ds.skipped_shapes == {'line': 1}
    b = ds.get_data_info(1)
    assert (b['instances'], b['width'], b['height']) == ([], 60, 40)


def test_skipped_shapes_are_logged_and_reported(tmp_path, monkeypatch):
    # A LabelMe 5 brush / AI mask, a point and a line are not read as
    # objects: counted per type, logged once, and in check_dataset's report.
    _write(tmp_path, 'a', [
        _shape('cat', [[1, 1], [9, 1], [5, 7]]),
        dict(_shape('cat', [[2, 2], [8, 8]], 'mask'), mask='iVBORw0KGgo='),
        _shape('dog', [[3, 3]], 'point'),
        _shape('dog', [[1, 1], [5, 5]], 'line')])
    logged = []
    monkeypatch.setattr(native, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    # every 'dog' was drawn as a skipped shape: the class check says so
    with pytest.raises(ValueError, match=r"\['dog'\] .* no instance.*"
                       r"skipped: \{'mask': 1, 'point': 1, 'line': 1\}"):
        _build(tmp_path)
    ds = _build(tmp_path, check_classes='warn')
    assert len(ds.get_data_info(0)['instances']) == 1
    assert ds.skipped_shapes == {'mask': 1, 'point': 1, 'line': 1}
    assert any('skipped 3 shape(s)' in m and "'mask': 1" in m
               for m in logged), logged
    report = check_dataset_cfg(dict(
        type='LabelMeDataset', data_root=str(tmp_path),
        metainfo=dict(classes=('cat', 'dog'))))
    assert report['boxes']['skipped_shapes'] == 3


def test_group_id_merges_parts_of_one_instance(tmp_path):
    _write(tmp_path, 'a', [
        _shape('cat', [[1, 1], [9, 1], [5, 7]], group=3),
        _shape('dog', [[1, 1], [9, 1], [5, 7]], group=3),
        _shape('cat', [[20, 10], [30, 10], [25, 30]], group=3),
        _shape('cat', [[40, 1], [50, 1], [45, 5]])])
    insts = _build(tmp_path).get_data_info(0)['instances']
    assert len(insts) == 3
    assert insts[0]['bbox'] == [1, 1, 30, 30]
    assert insts[0]['mask'] == [[1, 1, 9, 1, 5, 7],
                                [20, 10, 30, 10, 25, 30]]
    assert insts[1]['bbox_label'] == 1 and len(insts[1]['mask']) == 1


@pytest.mark.parametrize('shapes,match', [
    ([_shape('cat', [[1, 1], [2, 2]])],
     r'a\.json \[shapes\]\[0\]\[points\]: a polygon needs at least 3'),
    ([_shape('cat', [[1, 1]], 'rectangle')], r'\[points\]: a rectangle'),
    ([_shape('cat', [[1, 1], [2, 'x'], [3, 3]])],
     r'\[shapes\]\[0\]\[points\]\[1\]: expected finite numbers'),
    ([_shape('cow', [[1, 1], [2, 2], [3, 1]])],
     r"\[shapes\]\[0\]\[label\]: class 'cow' is not in"),
    ([dict(points=[])], r'\[shapes\]\[0\]: a shape needs a "label"'),
])
def test_bad_shapes_name_file_and_key(tmp_path, shapes, match):
    _write(tmp_path, 'a', shapes)
    with pytest.raises(AnnotationError, match=match):
        _build(tmp_path)


def test_missing_image_is_an_error(tmp_path):
    _write(tmp_path, 'a', [], image=False)
    with pytest.raises(AnnotationError,
                       match=r'a\.json \[imagePath\]: refers to image'):
        _build(tmp_path)


def test_sizes_that_disagree_with_the_image_are_an_error(tmp_path):
    # A resized image with its old JSON: the boxes were silently wrong.
    _write(tmp_path, 'a', [_shape('cat', [[1, 1], [9, 1], [5, 7]]),
                           _shape('dog', [[1, 1], [9, 9]], 'rectangle')])
    Image.new('RGB', (30, 20)).save(tmp_path / 'a.jpg')
    with pytest.raises(AnnotationError, match=r'a\.json \[imageWidth\]: '
                       r'says the image is 60x40 .*a\.jpg is 30x20 as '
                       r'loaded: the image was resized'):
        _build(tmp_path)
    Image.new('RGB', (40, 60)).save(tmp_path / 'a.jpg')  # sides swapped
    with pytest.raises(AnnotationError, match=r'is 40x60 as loaded: the '
                       r'image is displayed turned by its EXIF orientation'):
        _build(tmp_path)


def test_unknown_class_as_ignore_region(tmp_path):
    _write(tmp_path, 'a', [_shape('cat', [[1, 1], [9, 1], [5, 7]]),
                           _shape('dog', [[1, 1], [9, 1], [5, 7]]),
                           _shape('cow', [[1, 1], [9, 1], [5, 7]])])
    ds = _build(tmp_path, unknown_classes='ignore')
    insts = ds.get_data_info(0)['instances']
    assert [(i['bbox_label'], i['ignore_flag']) for i in insts] == [
        (0, 0), (1, 0), (-1, 1)]
    assert ds.unknown_class_counts == {'cow': 1}


def test_renamed_class_list_raises_instead_of_empty(tmp_path):
    """mmdet #9610: a metainfo typo must not give a silent empty class."""
    _write(tmp_path, 'a', [_shape('cat', [[1, 1], [9, 1], [5, 7]]),
                           _shape('dog', [[1, 1], [9, 1], [5, 7]])])
    with pytest.raises(ValueError, match=r"\['Dog'\].*no instance.*"
                       r"other class names \{'dog': 1\}"):
        _build(tmp_path, classes=('cat', 'Dog'), unknown_classes='skip')
    with pytest.raises(ValueError, match='no instance'):
        _build(tmp_path, classes=('Cat', 'Dog'), unknown_classes='skip',
               test_mode=True)


def test_ignore_label_is_an_ignore_region_not_an_unknown_class(tmp_path):
    _write(tmp_path, 'a', [_shape('cat', [[1, 1], [9, 1], [5, 7]]),
                           _shape('__ignore__', [[2, 2], [8, 8]],
                                  'rectangle')])
    ds = _build(tmp_path, classes=('cat', ))  # unknown_classes='error'
    insts = ds.get_data_info(0)['instances']
    assert [(i['bbox_label'], i['ignore_flag']) for i in insts] == [
        (0, 0), (-1, 1)]
    assert insts[1]['bbox'] == [2, 2, 8, 8]
    assert not ds.unknown_class_counts
    # in the classes (labels.txt copied whole) it was trained as a class
    with pytest.raises(ValueError, match="'__ignore__' is in the classes"):
        _build(tmp_path, classes=('__ignore__', 'cat'))


def test_utf8_bom_json_loads(tmp_path):
    # was: "is not valid JSON: Unexpected UTF-8 BOM"
    _write(tmp_path, 'a', [_shape('cat', [[1, 1], [9, 1], [5, 9]]),
                           _shape('dog', [[1, 1], [9, 9]], 'rectangle')])
    text = (tmp_path / 'a.json').read_text()
    (tmp_path / 'a.json').write_text(text, encoding='utf-8-sig')
    assert len(_build(tmp_path).get_data_info(0)['instances']) == 2
