"""YOLODataset on tiny generated folders and on the real kitti_yolo."""
import os.path as osp

import pytest
from PIL import Image

from rcnn_plugin.datasets import (
    AnnotationError,
    YOLODataset,
    class_instance_counts,
    read_class_names,
)

from conftest import REPO, logged_messages

KITTI_YOLO = osp.join(REPO, '..', 'shared', 'datasets', 'kitti_yolo')


def _write(root, labels, names=('cat', 'dog'), size=(100, 50),
           names_file='obj.names'):
    """CVAT layout: obj_train_data/ with images and labels side by side."""
    d = root / 'obj_train_data'
    d.mkdir(parents=True, exist_ok=True)
    for stem, text in labels.items():
        Image.new('RGB', size).save(d / f'{stem}.png')
        if text is not None:
            (d / f'{stem}.txt').write_text(text)
    if names_file.endswith('yaml'):
        (root / names_file).write_text(
            'names:\n' + ''.join(f'  {i}: {n}\n' for i, n in enumerate(names)))
    else:
        (root / names_file).write_text('\n'.join(names) + '\n')
    (root / 'train.txt').write_text('data/obj_train_data/a.png\n')


def _build(root, **kwargs):
    kwargs.setdefault('data_prefix', dict(img='obj_train_data'))
    return YOLODataset(data_root=str(root), pipeline=[], **kwargs)


def test_boxes_in_pixels_negatives_and_names(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.4\n\n1 0.1 0.2 0.2 0.2\n',
                      'b': '', 'c': None})
    ds = _build(tmp_path)
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert len(ds) == 3  # b (empty file) and c (no file) are negatives
    a = ds.get_data_info(0)
    assert (a['img_id'], a['width'], a['height']) == ('a', 100, 50)
    assert a['img_path'] == osp.join(str(tmp_path), 'obj_train_data',
                                     'a.png')
    assert [i['bbox'] for i in a['instances']] == [
        pytest.approx([40, 15, 60, 35]), pytest.approx([0, 5, 20, 15])]
    assert [i['bbox_label'] for i in a['instances']] == [0, 1]
    assert [i['ignore_flag'] for i in a['instances']] == [0, 0]
    assert ds.get_data_info(1)['instances'] == []
    assert ds.get_data_info(2)['instances'] == []


def test_polygon_lines_give_masks(tmp_path):
    _write(tmp_path, {'a': '1 0.1 0.2 0.5 0.2 0.3 0.8\n'})
    ds = _build(tmp_path, check_classes='off')
    inst = ds.get_data_info(0)['instances'][0]
    assert inst['bbox'] == pytest.approx([10, 10, 50, 40])
    assert inst['mask'][0] == pytest.approx([10, 10, 50, 10, 30, 40])


def test_box_lines_beside_polygons_get_their_box_as_mask(tmp_path):
    # LoadAnnotations(with_mask=True) failed with a bare KeyError: 'mask'
    # on the box line (here, in another file); a collinear polygon (an
    # empty mask) is dropped and counted.
    from mmdet.datasets.transforms import LoadAnnotations
    _write(tmp_path, {'a': '1 0.1 0.2 0.5 0.2 0.3 0.8\n'
                           '0 0.1 0.1 0.2 0.2 0.3 0.3\n',
                      'b': '0 0.5 0.5 0.2 0.4\n'})
    with logged_messages() as messages:
        ds = _build(tmp_path)
    box = ds.get_data_info(1)['instances'][0]
    assert box['mask'] == [pytest.approx([40, 15, 60, 15, 60, 35, 40, 35])]
    assert any('1 of 2 objects have a box but no polygon' in m
               for m in messages)
    assert any('dropped a degenerate cat polygon (zero area)' in m
               for m in messages)
    assert len(ds.get_data_info(0)['instances']) == 1
    assert ds.dropped_boxes == {
        osp.join(str(tmp_path), 'obj_train_data', 'a.txt'): 1}
    for i in range(2):
        info = ds.get_data_info(i)
        out = LoadAnnotations(with_mask=True, poly2mask=True)(
            dict(info, ori_shape=(50, 100)))
        assert out['gt_masks'].masks.sum() > 0


def test_clipped_and_degenerate_boxes_are_counted(tmp_path):
    _write(tmp_path, {'a': '0 0.05 0.5 0.2 0.2\n0 0.5 0.5 0 0.1\n'
                           '1 0.5 0.5 0.5 0.5\n'})
    ds = _build(tmp_path)
    path = osp.join(str(tmp_path), 'obj_train_data', 'a.txt')
    assert ds.clipped_boxes == {path: 1}
    assert ds.dropped_boxes == {path: 1}
    assert [i['bbox'] for i in ds.get_data_info(0)['instances']] == [
        pytest.approx([0, 20, 15, 30]), pytest.approx([25, 12.5, 75, 37.5])]


def test_filter_empty_gt_switch(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n',
                      'b': ''})
    assert len(_build(tmp_path)) == 2
    assert len(_build(tmp_path,
                      filter_cfg=dict(filter_empty_gt=True))) == 1


@pytest.mark.parametrize('text,match', [
    ('0 0.5 0.5 0.2\n', r'a\.txt:1: expected 5 columns'),
    ('0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 0.1\n', r'a\.txt:2: expected 5'),
    ('0 0.5 1.5 0.2 0.2\n', r'a\.txt:1: coordinates must be normalised'),
    ('0 0.5 -0.1 0.2 0.2\n', r'a\.txt:1: coordinates'),
    ('0 nan 0.5 0.2 0.2\n', r'a\.txt:1: coordinates'),
    ('2 0.5 0.5 0.2 0.2\n', r'a\.txt:1: class index 2 is outside'),
    ('x 0.5 0.5 0.2 0.2\n', r'a\.txt:1: expected an integer class'),
    ('0 0.1 0.1 0.2 0.2 0.3\n', r'a\.txt:1: expected 5 columns'),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, match):
    _write(tmp_path, {'a': text})
    with pytest.raises(AnnotationError, match=match):
        _build(tmp_path)


def test_missing_or_wrong_label_folder_is_an_error(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n'})
    with pytest.raises(FileNotFoundError, match='label folder .*lbls'):
        _build(tmp_path, data_prefix=dict(img='obj_train_data', ann='lbls'))
    (tmp_path / 'lbls').mkdir()  # there, but holding no image's labels
    with pytest.raises(FileNotFoundError,
                       match=r'none of the 1 images .* has a label file'):
        _build(tmp_path, data_prefix=dict(img='obj_train_data', ann='lbls'))


def test_images_without_label_files_are_counted_and_logged(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n',
                      'b': None, 'c': None})
    with logged_messages() as messages:
        ds = _build(tmp_path)
    assert len(ds) == 3 and ds.unlabelled_images == 2
    text = '\n'.join(messages)
    assert '2 of 3 images' in text and 'read as negatives' in text


def test_blank_line_inside_the_names_file_is_an_error(tmp_path):
    path = tmp_path / 'obj.names'
    path.write_text('car\n\nperson\ntruck\n\n')
    with pytest.raises(AnnotationError, match=r'obj\.names:2: has a blank'):
        read_class_names(str(path))
    path.write_text('car\nperson\ntruck\n\n\n')  # trailing: allowed
    assert read_class_names(str(path)) == ('car', 'person', 'truck')


def test_label_without_image_is_an_error(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n'})
    (tmp_path / 'obj_train_data' / 'orphan.txt').write_text('0 .5 .5 .1 .1')
    with pytest.raises(AnnotationError, match=r'orphan\.txt: has no image'):
        _build(tmp_path)


def test_data_yaml_names_and_separate_label_dir(tmp_path):
    (tmp_path / 'images' / 'train').mkdir(parents=True)
    (tmp_path / 'labels' / 'train').mkdir(parents=True)
    Image.new('L', (20, 10)).save(tmp_path / 'images/train/x.jpg')
    (tmp_path / 'labels/train/x.txt').write_text(
        '1 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.1 0.1\n')
    (tmp_path / 'data.yaml').write_text('names: [a, b]\n')
    ds = _build(tmp_path, data_prefix=dict(img='images/train',
                                           ann='labels/train'))
    assert ds.metainfo['classes'] == ('a', 'b')
    assert ds.get_data_info(0)['instances'][0]['bbox'] == pytest.approx(
        [5, 2.5, 15, 7.5])
    assert read_class_names(str(tmp_path / 'data.yaml')) == ('a', 'b')


def test_metainfo_must_match_names_file(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n'})
    with pytest.raises(ValueError, match='do not match'):
        _build(tmp_path, metainfo=dict(classes=('dog', 'cat')))


def test_class_never_present_is_an_error(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n'}, names=('cat', 'dgo'))
    with pytest.raises(ValueError, match=r"classes \['dgo'\].*no instance"):
        _build(tmp_path)
    assert len(_build(tmp_path, check_classes='warn')) == 1
    # A val split (test_mode) may miss a class: logged, not fatal.
    assert len(_build(tmp_path, test_mode=True)) == 1


def _kitti_yolo_or_skip():
    if not osp.isdir(osp.join(KITTI_YOLO, 'labels')):
        pytest.skip('real kitti_yolo not found at '
                    f'{osp.abspath(KITTI_YOLO)} (../shared/datasets absent)')
    return KITTI_YOLO


@pytest.mark.parametrize('split,images,counts', [
    ('train', 40, {'pedestrian': 89, 'cyclist': 39, 'vehicle': 229}),
    ('val', 15, {'pedestrian': 33, 'cyclist': 25, 'vehicle': 50}),
])
def test_real_kitti_yolo_counts(split, images, counts):
    root = _kitti_yolo_or_skip()
    ds = YOLODataset(data_root=root, pipeline=[], data_prefix=dict(
        img=f'images/{split}/obj_train_data',
        ann=f'labels/{split}/obj_train_data'))
    assert ds.metainfo['classes'] == ('pedestrian', 'cyclist', 'vehicle')
    assert len(ds) == images
    assert class_instance_counts(ds) == counts
    assert not ds.dropped_boxes
    info = ds.get_data_info(0)
    assert (info['width'], info['height']) == (1242, 375)


def test_names_file_false_uses_the_given_names(tmp_path):
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n'})
    ds = _build(tmp_path, names_file=False,
                metainfo=dict(classes=('Cat', 'Dog')))
    assert ds.metainfo['classes'] == ('Cat', 'Dog')
    assert class_instance_counts(ds) == dict(Cat=1, Dog=1)
    with pytest.raises(ValueError, match='names_file=False needs'):
        _build(tmp_path, names_file=False)


def test_two_images_of_one_stem_are_an_error(tmp_path):
    # a.png and a.jpg shared a.txt's boxes and the image id 'a', which
    # CocoMetric merges into one image
    _write(tmp_path, {'a': '0 0.5 0.5 0.2 0.4\n'})
    Image.new('RGB', (100, 50)).save(tmp_path / 'obj_train_data' / 'a.jpg')
    with pytest.raises(AnnotationError, match=r'a\.png: and a\.jpg have one '
                       'name stem'):
        _build(tmp_path)


def test_utf8_bom_in_names_and_label_files(tmp_path):
    # Windows editors write a BOM: it was read into the first class name
    # ('\ufeffcat', silently) and the first label line.
    _write(tmp_path, {'a': None})
    (tmp_path / 'obj.names').write_text('cat\ndog\n', encoding='utf-8-sig')
    (tmp_path / 'obj_train_data' / 'a.txt').write_text(
        '1 0.5 0.5 0.2 0.4\n0 0.5 0.5 0.2 0.2\n', encoding='utf-8-sig')
    ds = _build(tmp_path)
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [
        1, 0]


def test_upper_case_label_extension_is_read(tmp_path):
    # a.TXT (Windows exports) was not matched to a.png: the image was read
    # as a negative and its boxes were lost.
    _write(tmp_path, {'a': None, 'b': '1 0.5 0.5 0.2 0.2\n'})
    d = tmp_path / 'obj_train_data'
    (d / 'a.TXT').write_text('0 0.5 0.5 0.2 0.4\n')
    ds = _build(tmp_path, check_classes='off')
    assert ds.unlabelled_images == 0
    a = ds.get_data_info(0)
    assert a['ann_path'] == osp.join(str(d), 'a.TXT')
    assert [i['bbox'] for i in a['instances']] == [
        pytest.approx([40, 15, 60, 35])]


def test_lower_case_label_extension_wins_and_the_other_is_logged(tmp_path):
    # Only on a case-sensitive file system can both exist.
    _write(tmp_path, {'a': '1 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.1 0.1\n'})
    upper = tmp_path / 'obj_train_data' / 'a.TXT'
    upper.write_text('0 0.5 0.5 0.2 0.4\n')
    if (tmp_path / 'obj_train_data' / 'a.txt').read_text().startswith('0'):
        pytest.skip('case-insensitive file system')
    with logged_messages() as messages:
        ds = _build(tmp_path)
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [
        1, 0]
    assert any('1 label files' in m and 'a.TXT' in m for m in messages)
