"""Fuzz every parser: the only exception allowed is AnnotationError, and
what is read is well formed."""
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rcnn_plugin.datasets import (
    AnnotationError,
    KittiDataset,
    LabelMeDataset,
    VIADataset,
    YOLODataset,
    labelme_shape_polygon,
    parse_kitti_line,
    parse_yolo_line,
    read_class_names,
    via_shape_polygon,
)

FAST = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
FILES = settings(max_examples=25, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
NUMBER = st.one_of(st.integers(-5, 50), st.floats(allow_nan=True),
                   st.sampled_from(['0.5', '1', '-0', 'nan', 'inf', '1e9']))
TOKEN = st.one_of(NUMBER.map(str), st.text(max_size=4))
LINE = st.lists(TOKEN, max_size=17).map(' '.join)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBER | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(['name', 'all_points_x', 'all_points_y', 'x', 'y',
                         'width', 'height', 'cx', 'cy', 'r', 'label',
                         'points', 'shape_type', 'group_id', 'z']),
        inner, max_size=5),
    max_leaves=12)


def _only_annotation_errors(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except AnnotationError:
        return None


def _well_formed(ds) -> None:
    """Every object read has a known class (or is an ignore region), a
    finite box of positive area and even-length polygons of 3+ points."""
    if ds is None:
        return
    classes = ds.metainfo['classes']
    assert classes and all(isinstance(c, str) for c in classes)
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            label, ignore = inst['bbox_label'], inst['ignore_flag']
            assert 0 <= label < len(classes) or (label == -1 and ignore)
            x1, y1, x2, y2 = inst['bbox']
            assert all(map(math.isfinite, (x1, y1, x2, y2)))
            assert x1 < x2 and y1 < y2
            for poly in inst.get('mask', []):
                assert len(poly) >= 6 and len(poly) % 2 == 0


@FAST
@given(line=st.one_of(LINE, st.text(max_size=40)))
def test_yolo_line(line):
    inst = _only_annotation_errors(parse_yolo_line, line, 3, 64, 32, 'f', 1)
    if inst is not None:
        assert 0 <= inst['bbox_label'] < 3
        assert len(inst['bbox']) == 4


@FAST
@given(line=st.one_of(LINE, st.text(max_size=60)))
def test_kitti_line(line):
    inst = _only_annotation_errors(parse_kitti_line, line, 'f', 1)
    if inst is not None:
        assert len(inst['bbox']) == 4 and isinstance(inst['occluded'], int)
        assert all(map(math.isfinite, inst['bbox'] + [inst['alpha']]))


@FAST
@given(shape=JSON)
def test_via_shape(shape):
    poly = _only_annotation_errors(via_shape_polygon, shape, 'f', 'k')
    if poly is not None:
        assert len(poly) >= 6 and len(poly) % 2 == 0


@FAST
@given(shape=JSON, kind=st.sampled_from(
    ['polygon', 'rectangle', 'circle', 'line', None, 7]))
def test_labelme_shape(shape, kind):
    if isinstance(shape, dict):
        shape['shape_type'] = kind
        poly = _only_annotation_errors(labelme_shape_polygon, shape, 'f',
                                       'k')
        if poly is not None:
            assert len(poly) >= 6 and len(poly) % 2 == 0
            assert all(map(math.isfinite, poly))


def _image(folder, name='a.png'):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (16, 8)).save(folder / name)


@FILES
@given(raw=st.one_of(st.binary(max_size=80),
                     st.lists(LINE, max_size=4).map(
                         lambda ls: '\n'.join(ls).encode())),
       names=st.binary(max_size=40))
def test_yolo_dataset_files(tmp_path, raw, names):
    _image(tmp_path / 'd')
    (tmp_path / 'd' / 'a.txt').write_bytes(raw)
    (tmp_path / 'data.yaml').write_bytes(names)
    _well_formed(_only_annotation_errors(
        YOLODataset, data_root=str(tmp_path), data_prefix=dict(img='d'),
        pipeline=[], check_classes='off', names_file='data.yaml'))
    names = _only_annotation_errors(read_class_names,
                                    str(tmp_path / 'data.yaml'))
    assert names is None or all(isinstance(n, str) and n for n in names)


@FILES
@given(raw=st.one_of(st.binary(max_size=80),
                     st.lists(LINE, max_size=3).map(
                         lambda ls: '\n'.join(ls).encode())))
def test_kitti_dataset_files(tmp_path, raw):
    _image(tmp_path / 'image_2', '000001.png')
    (tmp_path / 'label_2').mkdir(exist_ok=True)
    (tmp_path / 'label_2' / '000001.txt').write_bytes(raw)
    _well_formed(_only_annotation_errors(
        KittiDataset, data_root=str(tmp_path), pipeline=[],
        check_classes='off', data_prefix=dict(img='image_2', ann='label_2')))


def _json_or_bytes():
    regions = st.lists(st.fixed_dictionaries(
        {'shape_attributes': JSON, 'region_attributes': JSON}), max_size=3)
    via = st.fixed_dictionaries({'filename': st.sampled_from(
        ['a.png', 'b.png', 3]), 'regions': regions | JSON})
    return st.one_of(st.binary(max_size=60),
                     st.dictionaries(st.text(max_size=3), via | JSON,
                                     max_size=2).map(
                                         lambda d: json.dumps(d).encode()),
                     JSON.map(lambda d: json.dumps(d).encode()))


@FILES
@given(raw=_json_or_bytes())
def test_via_dataset_files(tmp_path, raw):
    _image(tmp_path)
    (tmp_path / 'via.json').write_bytes(raw)
    _well_formed(_only_annotation_errors(
        VIADataset, data_root=str(tmp_path), ann_file='via.json',
        pipeline=[], check_classes='off', metainfo=dict(classes=('a', ))))


@FILES
@given(shapes=st.lists(JSON, max_size=3) | JSON,
       extra=st.dictionaries(st.sampled_from(
           ['imageWidth', 'imageHeight', 'imagePath']), JSON, max_size=2))
def test_labelme_dataset_files(tmp_path, shapes, extra):
    _image(tmp_path / 'img')
    (tmp_path / 'ann').mkdir(exist_ok=True)
    data = dict(shapes=shapes, imagePath='../img/a.png', imageWidth=16,
                imageHeight=8)
    data.update(extra)
    (tmp_path / 'ann' / 'a.json').write_text(json.dumps(data))
    _well_formed(_only_annotation_errors(
        LabelMeDataset, data_root=str(tmp_path), pipeline=[],
        data_prefix=dict(ann='ann'), check_classes='off',
        unknown_classes='skip', metainfo=dict(classes=('a', ''))))


@FAST
@given(lines=st.lists(st.one_of(LINE, st.builds(
    lambda c, v: f'{c} ' + ' '.join(map(str, v)), st.integers(-1, 3),
    st.lists(st.floats(-0.1, 1.1), min_size=4, max_size=4))), max_size=4))
def test_yolo_fast_path_agrees_with_line_parser(lines):
    from rcnn_plugin.datasets.yolo import _fast_boxes
    fast = _fast_boxes(lines, 3, 64, 32)
    if fast is not None:
        slow = [parse_yolo_line(line, 3, 64, 32, 'f', i)
                for i, line in enumerate(lines, 1)]
        assert fast == [inst for inst in slow if inst is not None]


@FAST
@given(shape=JSON, kind=st.sampled_from(['polygon', 'rectangle', None]),
       label=st.sampled_from(['a', 'b', 3, None]),
       points=st.lists(st.lists(NUMBER, min_size=1, max_size=3),
                       max_size=5))
def test_labelme_fast_path_agrees_with_checked_path(shape, kind, label,
                                                    points):
    ds = LabelMeDataset.__new__(LabelMeDataset)
    ds._metainfo = dict(classes=('a', ))
    ds._label_map = {'a': 0}
    ds.unknown_classes = 'skip'
    ds.unknown_class_counts = __import__('collections').Counter()
    ds.skipped_shapes = __import__('collections').Counter()
    if not isinstance(shape, dict):
        shape = {}
    shape.update(shape_type=kind, label=label, points=points)
    fast = ds._fast_shape(shape)
    if fast is not None:
        assert ds._parse_shape('f', 'k', shape) == fast
