"""CSVDataset on generated CSV tables and on the real bcd dataset."""
import logging
import os.path as osp

import pytest
from PIL import Image

from rcnn_plugin.datasets import (
    AnnotationError,
    BadImageError,
    CSVDataset,
    class_instance_counts,
)

from conftest import REPO, logged_messages

BCD = osp.join(REPO, '..', 'shared', 'datasets', 'bcd')
HEADER = 'image_id,image,xmin,ymin,xmax,ymax,label\n'


def _write(root, rows, header=HEADER, images=('a.png', 'b.png'),
           size=(100, 50)):
    (root / 'images').mkdir(exist_ok=True)
    for name in images:
        Image.new('RGBA', size).save(root / 'images' / name)
    (root / 'boxes.csv').write_text(header + ''.join(r + '\n' for r in rows))


def _build(root, **kwargs):
    kwargs.setdefault('data_prefix', dict(img='images'))
    return CSVDataset(data_root=str(root), ann_file='boxes.csv',
                      pipeline=[], **kwargs)


def test_normalised_coordinates_grouping_and_sorted_classes(tmp_path):
    _write(tmp_path, ['1,a.png,0.1,0.2,0.5,1.0,wbc',
                      '2,b.png,0,0,0.5,0.5,rbc',
                      '1,a.png,0.5,0.5,1.0,1.0,rbc'])
    ds = _build(tmp_path)
    assert ds.metainfo['classes'] == ('rbc', 'wbc')
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == [
        'a.png', 'b.png']
    a = ds.get_data_info(0)['instances']
    assert a[0]['bbox'] == pytest.approx([10, 10, 50, 50])
    assert [i['bbox_label'] for i in a] == [1, 0]
    assert class_instance_counts(ds) == dict(rbc=2, wbc=1)


def test_one_image_spelled_two_ways_is_one_image(tmp_path):
    _write(tmp_path, ['1,a.png,0.1,0.2,0.5,1.0,wbc',
                      '2,./a.png,0,0,0.5,0.5,rbc',
                      '3,b.png,0.5,0.5,1.0,1.0,rbc'])
    ds = _build(tmp_path)
    assert len(ds) == 2  # a.png and ./a.png: one image, both boxes
    assert ds.get_data_info(0)['img_id'] == 'a.png'
    assert len(ds.get_data_info(0)['instances']) == 2


def test_inferred_classes_are_logged(tmp_path):
    _write(tmp_path, ['1,a.png,0.1,0.2,0.5,1.0,wbc'])
    with logged_messages(logging.WARNING) as messages:
        _build(tmp_path)
        _build(tmp_path, metainfo=dict(classes=('wbc', )))
    (message, ) = messages  # only the first: the second was given classes
    assert "the classes are this file's labels, sorted: ('wbc',)" in message


def test_pixels_detected_and_forced(tmp_path):
    _write(tmp_path, ['1,a.png,1,2,30,40,cell'], images=('a.png', ))
    assert _build(tmp_path).get_data_info(0)['instances'][0]['bbox'] == [
        1, 2, 30, 40]
    _write(tmp_path, ['1,a.png,0,0,1,1,cell'], images=('a.png', ))
    assert _build(tmp_path, normalized=False).get_data_info(0)[
        'instances'][0]['bbox'] == [0, 0, 1, 1]
    _write(tmp_path, ['1,a.png,0,0,2,1,cell'], images=('a.png', ))
    with pytest.raises(AnnotationError, match=r'boxes\.csv:2: coordinate '
                       '2 is above 1, but normalized=True'):
        _build(tmp_path, normalized=True)
    # one typo in a normalised file read every box as pixels: ~1 px boxes
    _write(tmp_path, ['1,a.png,0.1,0.1,0.5,0.9,cell',
                      '1,a.png,0.2,0.2,0.6,0.7,cell',
                      '1,a.png,0.2,0.2,0.6,1.02,cell'], images=('a.png', ))
    with pytest.raises(AnnotationError, match=r'boxes\.csv:4: 2 of 3 boxes '
                       r'lie within \[0, 1\].*coordinate 1.02'):
        _build(tmp_path)
    assert _build(tmp_path, normalized=False).get_data_info(0)[
        'instances'][0]['bbox'] == [0.1, 0.1, 0.5, 0.9]


def test_header_spellings_delimiter_and_explicit_columns(tmp_path):
    _write(tmp_path, ['a.png;1;2;30;40;cat'], images=('a.png', ),
           header='File Name;Left;Top;Right;Bottom;Class Name\n')
    ds = _build(tmp_path)
    assert ds.metainfo['classes'] == ('cat', )
    assert ds.get_data_info(0)['instances'][0]['bbox'] == [1, 2, 30, 40]
    _write(tmp_path, ['a.png,1,2,30,40'], images=('a.png', ),
           header='pic,u1,v1,u2,v2\n')
    ds = _build(tmp_path, columns=dict(image='pic', xmin='u1', ymin='v1',
                                       xmax='u2', ymax='v2'))
    assert ds.metainfo['classes'] == ('object', )  # no label column
    with pytest.raises(AnnotationError, match=r"boxes\.csv:1: the header "
                       r".*has no column for \['image', 'xmin'"):
        _build(tmp_path)
    with pytest.raises(ValueError, match='unknown roles'):
        _build(tmp_path, columns=dict(width='w'))


def test_negative_rows_and_no_boxes_at_all(tmp_path):
    _write(tmp_path, ['1,a.png,1,1,9,9,cell', '2,b.png,,,,,'])
    ds = _build(tmp_path)
    assert len(ds) == 2
    assert ds.get_data_info(1)['instances'] == []
    _write(tmp_path, ['2,b.png,,,,,'])
    ds = _build(tmp_path, metainfo=dict(classes=('cell', )),
                check_classes='off')
    assert len(ds) == 1 and ds.get_data_info(0)['instances'] == []


@pytest.mark.parametrize('row,match', [
    ('1,a.png,1,x,9,9,cell', r"boxes\.csv:3: expected 4 numbers .*'x'"),
    ('1,a.png,1,1,9,nan,cell', r'boxes\.csv:3: coordinates must be finite'),
    ('1,,1,1,9,9,cell', r'boxes\.csv:3: the image cell is empty'),
    ('1,a.png,1,1,9,9,', r'boxes\.csv:3: a box without a class'),
    ('1,a.png,1,1', r'boxes\.csv:3: expected 7 cells, got 4'),
    ('1,a.png,1,1,9,9,Cell', r"boxes\.csv:3: class 'Cell' is not in"),
])
def test_bad_line_names_file_and_line(tmp_path, row, match):
    _write(tmp_path, ['1,a.png,1,1,9,9,cell', row])
    with pytest.raises(AnnotationError, match=match):
        _build(tmp_path, metainfo=dict(classes=('cell', )))


def test_missing_image_error_or_skip(tmp_path):
    _write(tmp_path, ['1,a.png,1,1,9,9,cell', '2,gone.png,1,1,9,9,cell'])
    with pytest.raises(BadImageError, match=r'boxes\.csv:3: refers to '
                       r'image .*gone\.png, which does not exist'):
        _build(tmp_path)
    ds = _build(tmp_path, on_bad_image='skip')
    assert len(ds) == 1 and len(ds.bad_images) == 1


def test_empty_csv_and_header_only(tmp_path):
    _write(tmp_path, [], header='')
    with pytest.raises(AnnotationError, match=r'boxes\.csv: is empty'):
        _build(tmp_path)
    _write(tmp_path, [])
    with pytest.raises(AnnotationError, match='found no images'):
        _build(tmp_path)


def test_real_bcd_counts():
    if not osp.isfile(osp.join(BCD, 'annotations.csv')):
        pytest.skip(f'real bcd not found at {osp.abspath(BCD)} '
                    '(../shared/datasets absent)')
    ds = CSVDataset(data_root=BCD, ann_file='annotations.csv',
                    data_prefix=dict(img='images'), pipeline=[])
    assert len(ds) == 100
    assert class_instance_counts(ds) == dict(rbc=2236, wbc=103)
    info = ds.get_data_info(0)
    assert (info['width'], info['height']) == (256, 256)
    assert max(max(i['bbox']) for i in info['instances']) <= 256
