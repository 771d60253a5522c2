"""check_dataset_cfg on small datasets with planted problems."""
import json

import numpy as np
import pytest
from PIL import Image

from rcnn_plugin.datasets import (
    BadImageError,
    YOLODataset,
    check_dataset_cfg,
    format_report,
    is_fatal,
)


def _yolo(root, files):
    d = root / 'data'
    d.mkdir(parents=True)
    (root / 'obj.names').write_text('cat\ndog\n')
    for name, text in files.items():
        if name.endswith('.txt'):
            (d / name).write_text(text)
        elif text == 'corrupt':
            (d / name).write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
        else:
            Image.new('RGB', (20, 10)).save(d / name)
    return dict(type='YOLODataset', data_root=str(root),
                data_prefix=dict(img='data'))


def test_clean_dataset_has_no_fatal_problem(tmp_path):
    cfg = _yolo(tmp_path, {'a.png': '', 'a.txt': '0 .5 .5 .2 .2\n'
                           '1 .5 .5 .4 .4\n1 .1 .5 .4 .4\n', 'b.png': ''})
    rep = check_dataset_cfg(cfg)
    assert rep['fatal'] == []
    assert rep['num_images'] == 2 and rep['num_instances'] == 3
    assert rep['classes'] == {'cat': dict(images=1, instances=1),
                              'dog': dict(images=1, instances=2)}
    assert rep['images_without_annotations'] == 1
    assert rep['boxes']['clipped'] == 1
    assert 'dog' in format_report({'train': rep})
    assert not is_fatal({'train': rep})


def test_planted_problems_are_fatal(tmp_path):
    # a.png and a.jpg share a.txt: the YOLO reader refuses them itself now
    cfg = _yolo(tmp_path / 'dup', {'a.png': '', 'a.jpg': '',
                                   'a.txt': '0 .5 .5 .2 .2\n'})
    rep = check_dataset_cfg(cfg)
    assert 'have one name stem' in rep['errors'][0]
    assert is_fatal({'train': rep})
    cfg = _yolo(tmp_path / 'one', {'a.png': '', 'a.txt': '0 .5 .5 .2 .2\n'})
    rep = check_dataset_cfg(cfg)
    assert rep['classes_never_present'] == ['dog']
    json.dumps(rep)
    assert is_fatal({'train': rep})


def test_unreadable_header_is_an_error_by_default(tmp_path):
    cfg = _yolo(tmp_path, {'a.png': '', 'a.txt': '0 .5 .5 .2 .2\n'
                           '1 .5 .5 .4 .4\n', 'c.png': 'corrupt'})
    with pytest.raises(BadImageError, match=r'c\.png cannot be read'):
        YOLODataset(**{k: v for k, v in cfg.items() if k != 'type'})
    ds = YOLODataset(on_bad_image='skip', **{
        k: v for k, v in cfg.items() if k != 'type'})
    assert len(ds) == 1 and len(ds.bad_images) == 1


def test_unknown_classes_and_decode_errors(tmp_path):
    (tmp_path / 'a.json').write_text(json.dumps(dict(
        imagePath='a.jpg', imageWidth=20, imageHeight=10, shapes=[
            dict(label='cat', points=[[1, 1], [5, 5]],
                 shape_type='rectangle'),
            dict(label='Dog', points=[[1, 1], [5, 5]],
                 shape_type='rectangle')])))
    # A JPEG whose header is fine but whose pixel data is cut short (noise:
    # a plain colour's JPEG is so small that the cut reaches its header).
    noise = np.random.RandomState(0).randint(0, 256, (10, 20, 3), np.uint8)
    Image.fromarray(noise).save(tmp_path / 'a.jpg')
    data = (tmp_path / 'a.jpg').read_bytes()
    (tmp_path / 'a.jpg').write_bytes(data[:len(data) - 200])
    cfg = dict(type='LabelMeDataset', data_root=str(tmp_path),
               metainfo=dict(classes=('cat', 'dog')))
    rep = check_dataset_cfg(cfg)
    assert rep['unknown_classes'] == {'Dog': 1}
    assert rep['classes_never_present'] == ['dog']
    assert list(rep['unreadable_images']) == [str(tmp_path / 'a.jpg')]


def test_coco_categories_outside_classes_are_reported(tmp_path):
    Image.new('RGB', (20, 10)).save(tmp_path / 'a.png')
    (tmp_path / 'ann.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.png', width=20, height=10)],
        annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0,
                          bbox=[1, 1, 4, 4], area=16),
                     dict(id=2, image_id=1, category_id=2, iscrowd=0,
                          bbox=[1, 1, 0, 4], area=0)],
        categories=[dict(id=1, name='cat'), dict(id=2, name='Dog')])))
    rep = check_dataset_cfg(dict(
        type='CocoDataset', data_root=str(tmp_path), ann_file='ann.json',
        data_prefix=dict(img=''), metainfo=dict(classes=('cat', 'dog'))))
    assert rep['unknown_classes'] == {'Dog': 1}
    assert rep['classes']['cat'] == dict(images=1, instances=1)


def test_every_missing_or_corrupt_image_is_listed(tmp_path):
    cfg = _yolo(tmp_path, {'a.png': '', 'a.txt': '0 .5 .5 .2 .2\n'
                           '1 .5 .5 .4 .4\n', 'c.png': 'corrupt',
                           'd.png': 'corrupt'})
    (tmp_path / 'via.json').write_text(json.dumps({
        k: dict(filename=k, regions=[]) for k in ('x.png', 'a.png',
                                                  'y.png')}))
    rep = check_dataset_cfg(cfg)
    assert rep['errors'] == [] and rep['num_images'] == 1
    assert len(rep['unreadable_images']) == 2
    assert all('cannot be read' in k for k in rep['unreadable_images'])
    rep = check_dataset_cfg(dict(
        type='VIADataset', data_root=str(tmp_path), ann_file='via.json',
        data_prefix=dict(img='data'), metainfo=dict(classes=('a', ))))
    assert rep['num_images'] == 1
    assert len(rep['missing_images']) == 2
    assert is_fatal({'val': rep})


def test_wrappers_without_a_pipeline_key_are_checked(tmp_path):
    # ClassSubsetDataset (a few-shot or incremental base split) and
    # ConcatDataset take no pipeline / test_mode: their leaves are checked.
    cfg = _yolo(tmp_path, {'a.png': '', 'a.txt': '0 .5 .5 .2 .2\n'
                           '1 .5 .5 .4 .4\n', 'b.png': ''})
    subset = dict(type='ClassSubsetDataset', classes=('cat', ),
                  dataset=dict(cfg, pipeline=[dict(type='LoadImageFromFile')]))
    rep = check_dataset_cfg(subset)
    assert rep['fatal'] == [] and rep['errors'] == []
    assert rep['num_images'] == 2 and rep['num_instances'] == 2
    (tmp_path / 'two').mkdir()
    other = _yolo(tmp_path / 'two', {'c.png': '', 'c.txt': '0 .5 .5 .2 .2\n'})
    rep = check_dataset_cfg(dict(type='ConcatDataset',
                                 datasets=[cfg, other]))
    assert rep['fatal'] == [] and rep['num_images'] == 3


def test_an_error_of_the_check_itself_is_not_blamed_on_the_data(
        tmp_path, monkeypatch):
    from rcnn_plugin.datasets import validation
    cfg = _yolo(tmp_path, {'a.png': '', 'a.txt': '0 .5 .5 .2 .2\n'})

    def broken(*args):
        raise KeyError('a bug in the checker')

    monkeypatch.setattr(validation, '_inspect', broken)
    with pytest.raises(KeyError, match='a bug in the checker'):
        check_dataset_cfg(cfg)  # was: a fatal "dataset problem"


def _voc(root, boxes):
    """A VOC folder: image i (60x40) holds one 'cell' box boxes[i]."""
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, b in enumerate(boxes):
        Image.new('RGB', (60, 40)).save(root / 'JPEGImages' / f'{i}.jpg')
        (root / 'Annotations' / f'{i}.xml').write_text(
            '<annotation><size><width>60</width><height>40</height></size>'
            f'<object><name>cell</name><bndbox><xmin>{b[0]}</xmin><ymin>'
            f'{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox>'
            '</object></annotation>')
    (root / 'ImageSets/Main/train.txt').write_text(
        ''.join(f'{i}\n' for i in range(len(boxes))))
    return dict(type='StrictXMLDataset', data_root=str(root),
                ann_file='ImageSets/Main/train.txt',
                data_prefix=dict(sub_data_root=''),
                metainfo=dict(classes=('cell', )),
                filter_cfg=dict(filter_empty_gt=True, min_size=32,
                                bbox_min_size=32))


def test_voc_train_config_with_bbox_min_size(tmp_path):
    # test_mode=True kept bbox_min_size, on which mmdet's XMLDataset asserts
    # not test_mode: a bare AssertionError escaped check_dataset_cfg.
    cfg = _voc(tmp_path, [(1, 1, 50, 38), (1, 1, 9, 9)])
    rep = check_dataset_cfg(cfg)
    assert rep['errors'] == [] and rep['fatal'] == []
    assert (rep['num_images'], rep['num_instances']) == (2, 2)
    assert cfg['filter_cfg']['bbox_min_size'] == 32  # the caller's is kept
