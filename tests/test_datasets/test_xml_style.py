"""StrictXMLDataset on tiny VOC folders written by the test."""
import os.path as osp

import cv2
import numpy as np
import pytest

from rcnn_plugin.datasets import AnnotationError, StrictXMLDataset, xml_style

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


def _labelimg(root, filename, image, size=True):
    (root / 'annotations').mkdir(exist_ok=True)
    (root / 'images').mkdir(exist_ok=True)
    cv2.imwrite(str(root / 'images' / image),
                np.zeros((40, 60, 3), np.uint8))
    name = f'<filename>{filename}</filename>' if filename else ''
    sz = '<size><width>60</width><height>40</height></size>' if size else ''
    (root / 'annotations' / f'{osp.splitext(image)[0]}.xml').write_text(
        f'<annotation>{name}{sz}<object><name>cell</name><bndbox><xmin>2'
        '</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>'
        '</object></annotation>')


def _build_folder(root, **kwargs):
    return StrictXMLDataset(
        data_root=str(root), ann_file='', data_prefix=dict(sub_data_root=''),
        ann_subdir='annotations', img_subdir='images', pipeline=[],
        metainfo=dict(classes=('cell', )), **kwargs)


@pytest.mark.parametrize('filename', ['b.png', 'C:\\labelimg\\b.png', None,
                                      'b.jpg', 'wrong.jpg'])
def test_png_image_from_filename_or_stem(tmp_path, filename):
    _labelimg(tmp_path, filename, 'b.png', size=filename is not None)
    ds = _build_folder(tmp_path)
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(str(tmp_path), 'images', 'b.png')
    assert (info['width'], info['height']) == (60, 40)
    assert info['instances'][0]['bbox'] == [1, 1, 8, 8]


def test_folder_of_xmls_sorted_and_empty_folder(tmp_path):
    _labelimg(tmp_path, 'z.jpg', 'z.jpg')
    _labelimg(tmp_path, 'a.jpg', 'a.jpg')
    ds = _build_folder(tmp_path)
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == ['a', 'z']
    empty = tmp_path / 'empty'
    (empty / 'annotations').mkdir(parents=True)
    with pytest.raises(ValueError, match=r'annotations/?: lists no images'):
        _build_folder(empty)
    with pytest.raises(FileNotFoundError, match='annotation folder'):
        _build_folder(tmp_path / 'nowhere')


@pytest.mark.parametrize('xml,match', [
    ('<annotation><object><name>cell</name><bndbox><xmin>a</xmin><ymin>1'
     '</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>',
     r"a\.xml <object> 1: <bndbox><xmin> must be a finite number, got "
     "'a'"),
    ('<annotation><object><name>cell</name><bndbox><xmin>nan</xmin><ymin>1'
     '</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>',
     r"<xmin> must be a finite number, got 'nan'"),
    ('<annotation><object><name>cell</name><difficult>2</difficult><bndbox>'
     '<xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>'
     '</object></annotation>',
     r"a\.xml <object> 1: <difficult> must be 0 or 1, got '2'"),
    ('<annotation><object><bndbox/></object></annotation>',
     r'a\.xml <object> 1: an object has no <name>'),
    ('<annotation><object>', r'a\.xml: is not valid XML'),
])
def test_malformed_xml_names_file_and_object(tmp_path, xml, match):
    _labelimg(tmp_path, 'a.jpg', 'a.jpg')
    (tmp_path / 'annotations' / 'a.xml').write_text(xml)
    with pytest.raises(ValueError, match=match):
        _build_folder(tmp_path)


def test_names_are_stripped_difficult_as_written_by_tools(tmp_path):
    # ' cell' (the folder detector strips it) was refused as unknown; an
    # empty <difficult/> or 1.0 was a TypeError / ValueError traceback
    _labelimg(tmp_path, 'a.jpg', 'a.jpg')
    (tmp_path / 'annotations' / 'a.XML').write_text(
        '<annotation><object><name> cell\n</name><difficult/><bndbox>'
        '<xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>'
        '</object><object><name>cell</name><difficult>1.0</difficult>'
        '<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>5</xmax><ymax>5</ymax>'
        '</bndbox></object></annotation>')
    (tmp_path / 'annotations' / 'a.xml').unlink()  # a.XML only
    insts = _build_folder(tmp_path).get_data_info(0)['instances']
    assert [(i['bbox_label'], i['ignore_flag']) for i in insts] == [
        (0, 0), (0, 1)]


def test_utf8_bom_in_image_set_list(tmp_path):
    # the BOM was read into the first id: "lists image \ufeffimg_0, but
    # .../\ufeffimg_0.xml does not exist"
    _write_voc(tmp_path, [[('cell', (11, 11, 31, 21), 0)],
                          [('dot', (2, 3, 6, 8), 0)]])
    (tmp_path / 'ImageSets/Main/all.txt').write_text(
        'img_0\nimg_1\n', encoding='utf-8-sig')
    ds = _build(tmp_path)
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == [
        'img_0', 'img_1']


def test_size_that_disagrees_with_the_image_is_an_error(tmp_path,
                                                        monkeypatch):
    # A resized image with its old XML: <size> was trusted and the boxes
    # were silently on another scale.
    _write_voc(tmp_path, [[('cell', (11, 11, 31, 21), 0)],
                          [('dot', (2, 3, 6, 8), 0)]])
    cv2.imwrite(str(tmp_path / 'JPEGImages' / 'img_1.jpg'),
                np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(AnnotationError, match=r'img_1\.xml <size>: says the '
                       r'image is 60x40 .*img_1\.jpg is 30x20.*Label the '
                       'image again'):
        _build(tmp_path)
    # A missing image is still left to the loader; one header read each.
    (tmp_path / 'JPEGImages' / 'img_1.jpg').unlink()
    reads = []
    read = xml_style.read_image_size
    monkeypatch.setattr(xml_style, 'read_image_size',
                        lambda path, *a: reads.append(path) or read(path, *a))
    ds = _build(tmp_path)
    assert [ds.get_data_info(i)['width'] for i in range(2)] == [60, 60]
    assert reads == [osp.join(str(tmp_path), 'JPEGImages', 'img_0.jpg')]
    # an unreadable one too (the loader and check_dataset_cfg name it)
    (tmp_path / 'JPEGImages' / 'img_0.jpg').write_bytes(b'not a jpeg')
    assert len(_build(tmp_path)) == 2
