"""detect_layout: CSV folders, folders it cannot read, split_configs."""
import json
import shlex
import subprocess
import sys

import pytest
from mmdet.registry import DATASETS
from PIL import Image

from rcnn_plugin.datasets import LayoutError, detect_layout, split_configs


def _img(path, size=(40, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGBA' if path.suffix == '.png' else 'RGB', size).save(path)


def test_csv_with_other_header_spellings_in_pixels(tmp_path):
    _img(tmp_path / 'images' / 'a.png')
    _img(tmp_path / 'images' / 'b.png')
    (tmp_path / 'train_annotations.csv').write_text(
        'Filename,X1,Y1,X2,Y2,Class\n'
        'a.png,1,2,10,12,wbc\n'
        'a.png,3,3,9,9,rbc\n'
        'b.png,,,,,\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, list(layout.splits)) == ('csv', ['train'])
    assert (layout.classes, layout.class_source) == (
        ('rbc', 'wbc'), 'the label column (3 rows)')
    ds = DATASETS.build(dict(layout.splits['train'], pipeline=[]))
    assert len(ds) == 2
    assert ds.get_data_info(0)['instances'][0]['bbox'] == [1, 2, 10, 12]
    assert ds.get_data_info(1)['instances'] == []  # a negative image


def test_empty_folder_lists_what_was_looked_for(tmp_path):
    with pytest.raises(LayoutError) as err:
        detect_layout(str(tmp_path))
    msg = str(err.value)
    assert f'no dataset layout found under {tmp_path}' in msg
    assert '--format {yolo,voc,coco,via,labelme,kitti,csv}' in msg
    assert 'labels/<split>/' in msg and 'ImageSets/Main' in msg


def test_images_without_labels(tmp_path):
    _img(tmp_path / 'pics' / 'a.jpg')
    with pytest.raises(LayoutError, match=r'no labels found under .*1 '
                       r"images in \['pics'\]"):
        detect_layout(str(tmp_path))


def test_two_formats_in_one_folder_is_ambiguous(tmp_path):
    _img(tmp_path / 'a.jpg')
    (tmp_path / 'a.txt').write_text('0 0.5 0.5 0.2 0.2\n')
    (tmp_path / 'a.xml').write_text(
        '<annotation><filename>a.jpg</filename><object><name>x</name>'
        '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>'
        '</bndbox></object></annotation>')
    with pytest.raises(LayoutError, match='matches several formats: yolo '
                       r'\(.*\); voc \(.*\)\. Choose one with --format yolo '
                       'or --format voc'):
        detect_layout(str(tmp_path))
    assert detect_layout(str(tmp_path), 'voc').classes == ('x', )


def test_explicit_format_that_does_not_match(tmp_path):
    _img(tmp_path / 'a.jpg')
    (tmp_path / 'a.txt').write_text('0 0.5 0.5 0.2 0.2\n')
    with pytest.raises(LayoutError, match='no coco layout found under'):
        detect_layout(str(tmp_path), 'coco')
    with pytest.raises(LayoutError, match="unknown format 'cocoa'"):
        detect_layout(str(tmp_path), 'cocoa')


def test_missing_root_and_coco_images_nowhere(tmp_path):
    with pytest.raises(LayoutError, match='does not exist or is not a '
                       'folder'):
        detect_layout(str(tmp_path / 'nope'))
    (tmp_path / 'train.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='gone.jpg', width=9, height=9)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 4, 4],
                          area=16, iscrowd=0)],
        categories=[dict(id=1, name='a')])))
    with pytest.raises(LayoutError, match=r"train\.json refers to images "
                       r"such as \['gone\.jpg'\], which are in none"):
        detect_layout(str(tmp_path))


def test_coco_json_with_a_utf8_bom_is_refused_with_the_fix(tmp_path):
    # Detection read it (utf-8-sig), then mmdet's CocoDataset failed with a
    # bare "Unexpected UTF-8 BOM" JSONDecodeError naming no file.
    _img(tmp_path / 'train' / 'a.jpg')
    path = tmp_path / 'train' / 'train.json'
    path.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.jpg', width=40, height=20)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 4, 4],
                          area=16, iscrowd=0)],
        categories=[dict(id=1, name='a')])), encoding='utf-8-sig')
    with pytest.raises(LayoutError, match=r'train\.json starts with a UTF-8 '
                       r'byte-order mark \(BOM\).*Re-save') as err:
        detect_layout(str(tmp_path))
    command = shlex.split(str(err.value).split('e.g. ', 1)[1])
    assert command[:2] == ['python', '-c'] and command[-1] == str(path)
    subprocess.run([sys.executable] + command[1:], check=True)
    assert not path.read_bytes().startswith(b'\xef\xbb\xbf')
    layout = detect_layout(str(tmp_path))
    ds = DATASETS.build(dict(layout.splits['train'], pipeline=[]))
    assert len(ds) == 1


def test_no_class_names_and_duplicate_classes(tmp_path):
    _img(tmp_path / 'a.jpg')
    (tmp_path / 'a.json').write_text(json.dumps(dict(
        shapes=[], imagePath='a.jpg', imageWidth=40, imageHeight=20)))
    with pytest.raises(LayoutError, match='no class names found for the '
                       'labelme dataset.*--classes'):
        detect_layout(str(tmp_path))
    with pytest.raises(LayoutError, match='repeat a name'):
        detect_layout(str(tmp_path), classes=['a', 'a'])
    assert detect_layout(str(tmp_path), classes=['a']).classes == ('a', )


def test_split_configs_keeps_its_old_contract(tmp_path):
    (tmp_path / 'image_2').mkdir()
    (tmp_path / 'label_2').mkdir()
    Image.new('RGB', (80, 40)).save(tmp_path / 'image_2' / '000001.png')
    (tmp_path / 'label_2' / '000001.txt').write_text(
        'Car 0 0 0 1 2 30 20 1 1 1 1 1 1 0\n')
    cfgs = split_configs(str(tmp_path), 'kitti', ['Car'])
    assert list(cfgs) == ['all']
    assert cfgs['all']['pipeline'] == []
    assert cfgs['all']['metainfo'] == dict(classes=('Car', ))
    assert split_configs(str(tmp_path))['all']['type'] == 'KittiDataset'
