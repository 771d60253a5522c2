"""detect_layout on tiny generated folders of every supported layout."""
import json
import os.path as osp

import pytest
from mmdet.registry import DATASETS
from PIL import Image

from rcnn_plugin.datasets import (
    class_instance_counts,
    detect_layout,
)
from rcnn_plugin.datasets.layouts import LayoutError


def _img(path, size=(40, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size).save(path)


def _text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _build(layout, split, **kwargs):
    ds = DATASETS.build(dict(layout.splits[split], pipeline=[], **kwargs))
    ds.full_init()
    return ds


def _yolo(root, split, stems, sub='', labels='0 0.5 0.5 0.5 0.5\n'):
    for stem in stems:
        _img(root / 'images' / split / sub / f'{stem}.jpg')
        _text(root / 'labels' / split / sub / f'{stem}.txt', labels)


def test_yolo_ultralytics_data_yaml_dict(tmp_path):
    _yolo(tmp_path, 'train', ['a', 'b'], labels='1 .5 .5 .5 .5\n1 .5 .5 .2 .2'
          '\n0 .5 .5 .1 .1\n')
    _yolo(tmp_path, 'val', ['c'], labels='0 0.5 0.5 0.2 0.2\n')
    _img(tmp_path / 'images' / 'test' / 'd.jpg')  # unlabelled
    _text(tmp_path / 'data.yaml', 'names:\n  0: cat\n  1: dog\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, layout.train_split, layout.val_split) == (
        'yolo', 'train', 'val')
    assert layout.classes == ('cat', 'dog')
    assert layout.class_source == 'data.yaml'
    assert layout.data_root == str(tmp_path)
    assert 'pipeline' not in layout.splits['train']
    assert class_instance_counts(_build(layout, 'train')) == dict(cat=2,
                                                                  dog=4)
    # a val split without a dog: built in test_mode, as a val set is
    assert len(_build(layout, 'val', test_mode=True)) == 1
    assert any('images/test' in n for n in layout.notes)
    assert not layout.has_masks


def test_yolo_cvat_export_and_roboflow_split_folders(tmp_path):
    cvat = tmp_path / 'cvat'
    _yolo(cvat, 'train', ['a'], sub='obj_train_data')
    _text(cvat / 'labels' / 'train' / 'obj.names', 'car\n')
    _text(cvat / 'labels' / 'train' / 'train.txt', 'data/obj/a.jpg\n')
    layout = detect_layout(str(cvat))
    assert layout.splits['train']['data_prefix'] == dict(
        img='images/train/obj_train_data', ann='labels/train/obj_train_data')
    assert layout.classes == ('car', )
    robo = tmp_path / 'robo'
    for split in ('train', 'valid'):
        _img(robo / split / 'images' / 'x.jpg')
        _text(robo / split / 'labels' / 'x.txt',
              '0 0.1 0.1 0.9 0.1 0.5 0.9\n')  # a polygon
    _text(robo / 'data.yaml', 'nc: 1\nnames: [leaf]\n')
    layout = detect_layout(str(robo))
    assert (layout.train_split, layout.val_split) == ('train', 'valid')
    assert layout.has_masks
    assert len(_build(layout, 'valid')) == 1


def test_yolo_split_of_negatives_and_a_readme(tmp_path):
    _yolo(tmp_path, 'train', ['a'])
    _yolo(tmp_path, 'val', ['b'], labels='')  # only empty label files
    _text(tmp_path / 'classes.txt', 'cat\n')
    _text(tmp_path / 'README.dataset.txt', 'Exported by a tool.\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, sorted(layout.splits)) == ('yolo', ['train', 'val'])
    val = _build(layout, 'val', test_mode=True)
    assert val.get_data_info(0)['instances'] == []


def test_yolo_flat_folder_without_names_file(tmp_path):
    for stem, label in (('a', 0), ('b', 2)):
        _img(tmp_path / f'{stem}.png')
        _text(tmp_path / f'{stem}.txt', f'{label} 0.5 0.5 0.5 0.5\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, list(layout.splits), layout.val_split) == (
        'yolo', ['all'], None)
    assert layout.classes == ('0', '1', '2')
    assert any('--classes' in n for n in layout.notes)
    with pytest.raises(ValueError, match="classes \\['1'\\]"):
        _build(layout, 'all')  # class 1 has no box: a loud error


def test_yolo_folder_inside_a_labelled_root_is_not_a_split(tmp_path):
    # The root's labels are read recursively: valid/ was both a val split
    # and part of the training split (val images trained on).
    for stem in ('a', 'valid/b'):
        _img(tmp_path / f'{stem}.jpg')
        _text(tmp_path / f'{stem}.txt', '0 0.5 0.5 0.5 0.5\n')
    _text(tmp_path / 'classes.txt', 'cell\n')
    layout = detect_layout(str(tmp_path))
    assert list(layout.splits) == ['all'] and layout.val_split is None
    assert any('valid: inside the data root' in n for n in layout.notes)


def test_yolo_disagreeing_class_files_are_named(tmp_path):
    _yolo(tmp_path, 'train', ['a'], labels='0 .5 .5 .5 .5\n1 .5 .5 .2 .2\n')
    _text(tmp_path / 'data.yaml', 'names: [cat, dog]\n')
    _text(tmp_path / 'labels' / 'classes.txt', 'cat\ndgo\n')
    _text(tmp_path / 'labels' / 'train' / 'classes.txt', 'Cat\ndog\n')
    layout = detect_layout(str(tmp_path))
    assert layout.classes == ('cat', 'dog')
    (note, ) = [n for n in layout.notes if 'disagree' in n]
    for part in ("data.yaml: ['cat', 'dog']", "labels/classes.txt: ['cat', "
                 "'dgo']", "labels/train/classes.txt: ['Cat', 'dog']",
                 'Using data.yaml', '--classes'):
        assert part in note
    chosen = detect_layout(str(tmp_path), classes=['Cat', 'Dog'])
    assert chosen.class_source == '--classes'
    assert _build(chosen, 'train').metainfo['classes'] == ('Cat', 'Dog')


def _voc_xml(path, objects, filename=None, size=(40, 20)):
    objs = ''.join(
        f'<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}'
        f'</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>'
        for n, b in objects)
    name = f'<filename>{filename}</filename>' if filename else ''
    sz = (f'<size><width>{size[0]}</width><height>{size[1]}</height>'
          '</size>') if size else ''
    _text(path, f'<annotation>{name}{sz}{objs}</annotation>')


def test_labelimg_voc_folder_with_png_images(tmp_path):
    _img(tmp_path / 'images' / 'a.png')
    _img(tmp_path / 'images' / 'b.png')
    _voc_xml(tmp_path / 'annotations' / 'a.xml',
             [('wbc', (2, 2, 9, 9)), ('rbc', (3, 3, 8, 8))], 'a.png')
    _voc_xml(tmp_path / 'annotations' / 'b.xml', [('rbc', (1, 1, 5, 5))],
             'b.jpg', size=None)  # wrong name, no size: still found
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, list(layout.splits)) == ('voc', ['all'])
    assert layout.classes == ('rbc', 'wbc')  # sorted alphabetically
    assert layout.class_source == 'the annotations (2 files)'
    ds = _build(layout, 'all')
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(2)] == ['a.png', 'b.png']
    assert ds.get_data_info(1)['width'] == 40
    assert class_instance_counts(ds) == dict(rbc=2, wbc=1)


def test_voc_beside_images_in_split_folders_and_classes_file(tmp_path):
    for split in ('train', 'valid'):
        _img(tmp_path / split / 'x.jpg')
        _voc_xml(tmp_path / split / 'x.xml', [('cell', (1, 1, 9, 9))],
                 'x.jpg')
    _text(tmp_path / 'classes.txt', 'cell\nother\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.train_split, layout.val_split) == ('train', 'valid')
    assert (layout.classes, layout.class_source) == (('cell', 'other'),
                                                     'classes.txt')
    assert len(_build(layout, 'valid')) == 1


def test_classic_voc_with_image_sets(tmp_path):
    for i in range(3):
        _img(tmp_path / 'JPEGImages' / f'{i}.jpg')
        _voc_xml(tmp_path / 'Annotations' / f'{i}.xml',
                 [('RBC', (1, 1, 9, 9))], f'{i}.jpg')
    main = tmp_path / 'ImageSets' / 'Main'
    _text(main / 'train.txt', '0\n1\n')
    _text(main / 'test.txt', '2\n')
    _text(main / 'RBC_train.txt', '0 1\n1 1\n')
    layout = detect_layout(str(tmp_path))
    assert sorted(layout.splits) == ['test', 'train']
    assert (layout.val_split, layout.classes) == ('test', ('RBC', ))
    assert len(_build(layout, 'train')) == 2


def test_voc_trainval_is_not_validated_on_its_val_split(tmp_path):
    # trainval holds val (VOC convention): it was trained and validated on
    for i in range(3):
        _img(tmp_path / 'JPEGImages' / f'{i}.jpg')
        _voc_xml(tmp_path / 'Annotations' / f'{i}.xml',
                 [('RBC', (1, 1, 9, 9))], f'{i}.jpg')
    main = tmp_path / 'ImageSets' / 'Main'
    for name, ids in (('trainval', '0\n1\n'), ('val', '1\n'),
                      ('test', '2\n')):
        _text(main / f'{name}.txt', ids)
    layout = detect_layout(str(tmp_path))  # test stays for the number
    assert (layout.train_split, layout.val_split) == ('trainval', None)
    (main / 'test.txt').unlink()
    layout = detect_layout(str(tmp_path))
    assert (layout.train_split, layout.val_split) == ('trainval', None)
    assert any("holds the val split(s) ['val']" in n and 'hold a' in n
               for n in layout.notes)
    (main / 'val.txt').unlink()  # trainval alone: nothing to say
    assert detect_layout(str(tmp_path)).val_split is None


def _labelme(path, shapes, image='x.jpg'):
    _img(path.parent / image)
    _text(path, json.dumps(dict(shapes=shapes, imagePath=image,
                                imageWidth=40, imageHeight=20)))


def test_labelme_labels_txt_and_ignore_shapes(tmp_path):
    tri = [[1, 1], [9, 1], [5, 9]]
    _labelme(tmp_path / 'x.json', [
        dict(label='cat', points=tri, shape_type='polygon'),
        dict(label='__ignore__', points=tri, shape_type='polygon')])
    _labelme(tmp_path / 'y.json', [dict(label='dog', points=[[1, 1], [5, 5]],
                                        shape_type='rectangle')], 'y.jpg')
    _text(tmp_path / 'labels.txt', '__ignore__\n_background_\ncat\ndog\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, layout.classes, layout.class_source) == (
        'labelme', ('cat', 'dog'), 'labels.txt')
    assert layout.has_masks
    insts = _build(layout, 'all').get_data_info(0)['instances']
    assert [(i['bbox_label'], i['ignore_flag']) for i in insts] == [
        (0, 0), (-1, 1)]


def _coco(path, files, cats, seg=False):
    anns = [dict(id=i + 1, image_id=i + 1, category_id=cats[-1]['id'],
                 bbox=[1, 1, 5, 5], area=25, iscrowd=0,
                 segmentation=[[1, 1, 6, 1, 6, 6]] if seg else [])
            for i in range(len(files))]
    _text(path, json.dumps(dict(
        images=[dict(id=i + 1, file_name=f, width=40, height=20)
                for i, f in enumerate(files)],
        annotations=anns, categories=cats)))


def test_coco_roboflow_export_drops_the_supercategory(tmp_path):
    cats = [dict(id=0, name='cells', supercategory='none'),
            dict(id=1, name='rbc', supercategory='cells')]
    for split in ('train', 'valid'):
        _img(tmp_path / split / 'a.jpg')
        _coco(tmp_path / split / '_annotations.coco.json', ['a.jpg'], cats)
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, layout.train_split, layout.val_split) == (
        'coco', 'train', 'valid')
    assert layout.classes == ('rbc', )
    assert any("category ['cells']" in n for n in layout.notes)
    assert layout.splits['train']['data_prefix'] == dict(img='train/')
    assert len(_build(layout, 'train')) == 1


def test_coco_split_without_annotations_is_not_the_val_split(tmp_path):
    # An unlabelled export ("annotations": []) became the val split: the
    # best checkpoint was chosen on images without boxes.
    cats = [dict(id=1, name='rbc')]
    for split in ('train', 'test'):
        _img(tmp_path / split / 'a.jpg')
        _coco(tmp_path / split / '_annotations.coco.json', ['a.jpg'], cats)
    data = json.loads((tmp_path / 'test' / '_annotations.coco.json')
                      .read_text())
    data['annotations'] = []
    _text(tmp_path / 'test' / '_annotations.coco.json', json.dumps(data))
    layout = detect_layout(str(tmp_path))
    assert (list(layout.splits), layout.val_split) == (['train'], None)
    assert any('empty "annotations" list' in n for n in layout.notes)


@pytest.mark.parametrize('ann,img_dir,split', [
    ('train.json', 'images', 'train'),
    ('annotations/instances_val.json', 'val', 'val'),
])
def test_coco_json_outside_annotations(tmp_path, ann, img_dir, split):
    _img(tmp_path / img_dir / 'a.jpg')
    _coco(tmp_path / ann, ['a.jpg'], [dict(id=3, name='cat')], seg=True)
    layout = detect_layout(str(tmp_path))
    assert (list(layout.splits), layout.has_masks) == ([split], True)
    assert layout.splits[split]['data_prefix'] == dict(img=img_dir + '/')
    ds = _build(layout, split)
    assert ds.get_data_info(0)['instances'][0]['bbox_label'] == 0


def test_coco_label_order_that_mmdet_would_swap_is_refused(tmp_path):
    """CocoDataset numbers labels in the JSON's category order."""
    a, b, c = (dict(id=i, name=n) for i, n in enumerate('abc', 1))
    _img(tmp_path / 'train' / 'x.jpg')
    _img(tmp_path / 'val' / 'x.jpg')
    _coco(tmp_path / 'train' / 'train.json', ['x.jpg'], [a, c])
    _coco(tmp_path / 'val' / 'val.json', ['x.jpg'], [a, b, c])
    with pytest.raises(LayoutError, match="numbers the labels in the order"):
        detect_layout(str(tmp_path))  # union (a, c, b): val's b and c swap
    one = tmp_path / 'one'
    _img(one / 'x.jpg')
    _coco(one / 'train.json', ['x.jpg'], [a, b])
    with pytest.raises(LayoutError, match=r"lists its categories as \['a'"):
        detect_layout(str(one), classes=['b', 'a'])
    assert detect_layout(str(one), classes=['a', 'b']).classes == ('a', 'b')


def test_via_class_attribute_is_detected(tmp_path):
    _img(tmp_path / 'train' / 'a.jpg')
    poly = dict(name='polygon', all_points_x=[1, 9, 5],
                all_points_y=[1, 1, 9])
    regions = [dict(shape_attributes=poly, region_attributes=dict(type=t))
               for t in ('dog', 'cat')]
    _text(tmp_path / 'train' / 'via_region_data.json', json.dumps(
        {'a.jpg123': dict(filename='a.jpg', size=123, regions=regions)}))
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, layout.classes) == ('via', ('cat', 'dog'))
    assert layout.splits['train']['class_attribute'] == 'type'
    assert class_instance_counts(_build(layout, 'train')) == dict(cat=1,
                                                                  dog=1)
    # one unlabelled region (and a point, which the reader skips) merged
    # every class into 'object'; the reader names the unlabelled one now
    point = dict(name='point', cx=3, cy=3)
    regions += [dict(shape_attributes=poly, region_attributes=dict(type='')),
                dict(shape_attributes=point, region_attributes={})]
    _text(tmp_path / 'train' / 'via_region_data.json', json.dumps(
        {'a.jpg123': dict(filename='a.jpg', size=123, regions=regions)}))
    layout = detect_layout(str(tmp_path))
    assert layout.classes == ('cat', 'dog')
    with pytest.raises(ValueError, match='type'):
        _build(layout, 'train')


def test_kitti_training_folder(tmp_path):
    _img(tmp_path / 'training' / 'image_2' / '000001.png')
    _text(tmp_path / 'training' / 'label_2' / '000001.txt',
          'Pedestrian 0 0 0 1 2 30 18 1 1 1 1 1 1 0\n'
          'Car 0 0 0 1 2 30 18 1 1 1 1 1 1 0\n'
          'DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1 -1 -1 -1\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, list(layout.splits)) == ('kitti', ['training'])
    assert layout.classes == ('Car', 'Pedestrian')  # KITTI's order
    assert class_instance_counts(_build(layout, 'training')) == dict(
        Car=1, Pedestrian=1)


def test_splits_of_one_role_left_out_are_named():
    # VOC2007 and VOC2012 each have a train split: the first was used and
    # the other left out without a word.
    from rcnn_plugin.datasets.layouts.base import choose_splits
    train, val, notes = choose_splits(['VOC2007/train', 'VOC2012/train',
                                       'VOC2012/val'])
    assert (train, val) == ('VOC2007/train', 'VOC2012/val')
    assert any("['VOC2012/train'] have the same role (train)" in n
               for n in notes)
    assert choose_splits(['train', 'val'])[2] == []


def test_split_roles_from_words_of_a_name():
    # train_labels.csv / test_labels.csv (the TensorFlow tutorial layout)
    # and train_images/ / test_images/ had no role: training ran on
    # test_labels, the first name sorted.
    from rcnn_plugin.datasets.layouts.base import choose_splits, split_role
    assert [split_role(n) for n in (
        'train_labels', 'test-images', 'valid 2', 'train2017', 'pretrain',
        'train_test', 'images', 'images_train', 'person_keypoints_train2017',
        'captions_val2017', 'val2017_subset', 'test-dev')] == [
            'train', 'test', 'val', 'train', None, None, None, 'train', None,
            None, None, None]
    assert choose_splits(['test_labels', 'train_labels'])[:2] == (
        'train_labels', 'test_labels')
    # COCO's annotations_trainval2017: the instances files, not the person
    # keypoints or captions beside them (sorted first, they were trained on)
    assert choose_splits(['annotations/person_keypoints_train2017',
                          'annotations/person_keypoints_val2017',
                          'captions_train2017', 'captions_val2017',
                          'train2017', 'val2017'])[:2] == ('train2017',
                                                           'val2017')


def test_csv_train_and_test_label_files(tmp_path):
    for name in ('a', 'b'):
        _img(tmp_path / 'images' / f'{name}.jpg')
    for split, name in (('train', 'a'), ('test', 'b')):
        _text(tmp_path / f'{split}_labels.csv',
              'filename,width,height,class,xmin,ymin,xmax,ymax\n'
              f'{name}.jpg,40,20,cell,1,2,10,12\n')
    layout = detect_layout(str(tmp_path))
    assert (layout.fmt, layout.train_split, layout.val_split) == (
        'csv', 'train_labels', 'test_labels')
    assert _build(layout, 'train_labels').get_data_info(0)['img_path'] \
        .endswith('a.jpg')
