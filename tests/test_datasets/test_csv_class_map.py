"""CSVDataset's class_map: another dataset's labels read as our classes."""

import pytest
from PIL import Image

from rcnn_plugin.datasets import AnnotationError, CSVDataset

from conftest import bcd_or_skip

SOURCE = ('RBC', 'WBC', 'Platelets')


def _write(root, rows):
    (root / 'images').mkdir(exist_ok=True)
    for name in ('a.png', 'b.png'):
        Image.new('RGBA', (100, 50)).save(root / 'images' / name)
    (root / 'boxes.csv').write_text(
        'image_id,image,xmin,ymin,xmax,ymax,label\n'
        + ''.join(r + '\n' for r in rows))


def _build(root, **kwargs):
    return CSVDataset(data_root=str(root), ann_file='boxes.csv',
                      data_prefix=dict(img='images'), pipeline=[],
                      check_classes='warn', **kwargs)


ROWS = ['1,a.png,0.1,0.2,0.5,1.0,wbc', '2,b.png,0,0,0.5,0.5,rbc']


def test_labels_mapped_onto_source_classes(tmp_path):
    _write(tmp_path, ROWS)
    ds = _build(tmp_path, class_map=dict(rbc='RBC', wbc='WBC'),
                metainfo=dict(classes=SOURCE))
    assert ds.metainfo['classes'] == SOURCE
    labels = [ds.get_data_info(i)['instances'][0]['bbox_label']
              for i in range(2)]
    assert labels == [1, 0]  # wbc -> WBC, rbc -> RBC


def test_mapped_classes_without_metainfo(tmp_path):
    _write(tmp_path, ROWS)
    ds = _build(tmp_path, class_map=dict(rbc='RBC'))
    assert ds.metainfo['classes'] == ('RBC', 'wbc')


def test_map_key_not_a_label_is_an_error(tmp_path):
    _write(tmp_path, ROWS)
    with pytest.raises(AnnotationError, match=r"\['plt'\].*labels are "
                       r"\['rbc', 'wbc'\]"):
        _build(tmp_path, class_map=dict(rbc='RBC', plt='Platelets'),
               metainfo=dict(classes=SOURCE))


def test_map_value_not_a_class_is_an_error(tmp_path):
    _write(tmp_path, ROWS)
    with pytest.raises(AnnotationError, match=r"\['Rbc'\].*classes are"):
        _build(tmp_path, class_map=dict(rbc='Rbc'),
               metainfo=dict(classes=SOURCE))


def test_no_class_in_common_names_both_lists(tmp_path):
    _write(tmp_path, ROWS)
    with pytest.raises(AnnotationError, match=r"no class in common.*"
                       r"\['rbc', 'wbc'\].*\['RBC', 'WBC', 'Platelets'\]"):
        _build(tmp_path, metainfo=dict(classes=SOURCE))


def test_real_bcd_as_bccd_classes():
    ds = CSVDataset(data_root=bcd_or_skip(), ann_file='annotations.csv',
                    data_prefix=dict(img='images'), pipeline=[],
                    columns=dict(image='image', label='label'),
                    class_map=dict(rbc='RBC', wbc='WBC'),
                    metainfo=dict(classes=SOURCE), check_classes='warn')
    assert len(ds) == 100
    counts = [0, 0, 0]
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            counts[inst['bbox_label']] += 1
    assert counts[1] == 103 and counts[2] == 0 and counts[0] > 2000
