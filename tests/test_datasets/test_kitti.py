"""KittiDataset on generated label_2 files."""
import pytest
from PIL import Image

from rcnn_plugin.datasets import AnnotationError, KittiDataset

from conftest import logged_messages

CAR = 'Car 0.50 1 -1.57 10.0 20.0 50.0 35.0 1.5 1.6 3.9 1.0 1.7 10.0 -1.5'
PED = 'Pedestrian 0.00 0 0.20 5.0 5.0 15.0 30.0 1.7 0.5 0.8 1 2 3 0.1'
DONTCARE = ('DontCare -1 -1 -10 60.0 2.0 70.0 12.0 -1 -1 -1 -1000 -1000 '
            '-1000 -10')


def _write(root, frames, size=(80, 40)):
    (root / 'image_2').mkdir(exist_ok=True)
    (root / 'label_2').mkdir(exist_ok=True)
    for frame, lines in frames.items():
        Image.new('RGB', size).save(root / 'image_2' / f'{frame}.png')
        (root / 'label_2' / f'{frame}.txt').write_text(
            '\n'.join(lines) + '\n')


def _build(root, **kwargs):
    kwargs.setdefault('metainfo', dict(classes=('Car', 'Pedestrian')))
    return KittiDataset(data_root=str(root), pipeline=[],
                        data_prefix=dict(img='image_2', ann='label_2'),
                        **kwargs)


def test_boxes_dontcare_and_metadata(tmp_path):
    _write(tmp_path, {'000001': [CAR, DONTCARE, PED], '000002': []})
    ds = _build(tmp_path)
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert (info['img_id'], info['width'], info['height']) == ('000001', 80,
                                                               40)
    insts = info['instances']
    assert [i['bbox'] for i in insts] == [[10, 20, 50, 35], [60, 2, 70, 12],
                                          [5, 5, 15, 30]]
    assert [(i['bbox_label'], i['ignore_flag']) for i in insts] == [
        (0, 0), (-1, 1), (1, 0)]
    assert (insts[0]['truncated'], insts[0]['occluded'],
            insts[0]['alpha']) == (0.5, 1, -1.57)
    assert ds.get_data_info(1)['instances'] == []


def test_out_of_image_box_is_clipped(tmp_path):
    line = CAR.replace('50.0 35.0', '95.0 35.0')
    _write(tmp_path, {'000001': [line, PED]})
    ds = _build(tmp_path)
    assert ds.get_data_info(0)['instances'][0]['bbox'] == [10, 20, 80, 35]
    assert list(ds.clipped_boxes.values()) == [1]


def test_frame_list_file(tmp_path):
    _write(tmp_path, {'000001': [CAR, PED], '000002': [CAR]})
    (tmp_path / 'train.txt').write_text('000001\n')
    assert len(_build(tmp_path, ann_file='train.txt')) == 1
    (tmp_path / 'train.txt').write_text('000009\n')
    with pytest.raises(AnnotationError,
                       match=r"train\.txt: lists frame '000009'"):
        _build(tmp_path, ann_file='train.txt')
    # a BOM (Windows editors) was read into the first frame id and type
    (tmp_path / 'train.txt').write_text('000001\n', encoding='utf-8-sig')
    (tmp_path / 'label_2' / '000001.txt').write_text(
        f'{CAR}\n{PED}\n', encoding='utf-8-sig')
    info = _build(tmp_path, ann_file='train.txt').get_data_info(0)
    assert info['img_id'] == '000001'
    assert [i['bbox_label'] for i in info['instances']] == [0, 1]


@pytest.mark.parametrize('line,match', [
    ('Car 0 0 0 1 2 3 4', r'000001\.txt:2: expected 15 columns'),
    (CAR.replace('0.50', 'x'), r'000001\.txt:2: expected numbers'),
    (CAR.replace('Car', 'Bus'), r"000001\.txt:2: class 'Bus' is not in"),
    (CAR.replace('0.50', 'nan'), r'000001\.txt:2: nan or inf'),
    (CAR.replace('0.50', '-inf'), r'000001\.txt:2: nan or inf'),
])
def test_malformed_lines(tmp_path, line, match):
    _write(tmp_path, {'000001': [PED, line]})
    with pytest.raises(AnnotationError, match=match):
        _build(tmp_path)


def test_default_classes_are_kitti(tmp_path):
    _write(tmp_path, {'000001': [CAR, PED]})
    ds = _build(tmp_path, metainfo=None, check_classes='off')
    assert ds.metainfo['classes'][:4] == ('Car', 'Van', 'Truck',
                                          'Pedestrian')
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [
        0, 3]


def test_missing_image_names_the_label_file(tmp_path):
    _write(tmp_path, {'000001': [CAR, PED]})
    (tmp_path / 'label_2' / '000002.txt').write_text(CAR + '\n')
    with pytest.raises(AnnotationError,
                       match=r'000002\.txt: has no image 000002'):
        _build(tmp_path)


def test_dontcare_is_no_category_for_class_balancing(tmp_path):
    # get_cat_ids gave DontCare's label -1: mmdet's ClassAwareSampler
    # raised a bare KeyError: -1 and ClassBalancedDataset counted -1 as a
    # category of its own.
    from mmdet.datasets.samplers import ClassAwareSampler
    from mmengine.dataset import ClassBalancedDataset
    _write(tmp_path, {'000001': [CAR, PED], '000002': [DONTCARE, CAR],
                      '000003': [CAR]})
    ds = _build(tmp_path)
    assert [ds.get_cat_ids(i) for i in range(3)] == [[0, 1], [0], [0]]
    assert ClassAwareSampler(ds, seed=0).cat_dict == {0: [0, 1, 2], 1: [0]}
    # Pedestrian (in 1 of 3 images) is repeated; DontCare's image is not
    balanced = ClassBalancedDataset(ds, oversample_thr=0.5)
    assert [balanced._get_ori_dataset_idx(i)
            for i in range(len(balanced))] == [0, 0, 1, 2]


def test_upper_case_label_extension_is_read(tmp_path):
    # 000002.TXT (Windows exports) was not read: the frame was left out
    # without a word (the layout finder had matched it), and a frame list
    # naming it said the label file does not exist.
    _write(tmp_path, {'000001': [CAR, PED], '000002': [CAR, PED]})
    label = tmp_path / 'label_2' / '000002.TXT'
    (tmp_path / 'label_2' / '000002.txt').rename(label)
    ds = _build(tmp_path)
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == [
        '000001', '000002']
    info = ds.get_data_info(1)
    assert info['ann_path'] == str(label)
    assert [i['bbox_label'] for i in info['instances']] == [0, 1]
    (tmp_path / 'train.txt').write_text('000002\n')
    assert len(_build(tmp_path, ann_file='train.txt')) == 1


def test_lower_case_label_extension_wins_and_the_other_is_logged(tmp_path):
    _write(tmp_path, {'000001': [CAR, PED]})
    upper = tmp_path / 'label_2' / '000001.TXT'
    upper.write_text(PED + '\n')
    if (tmp_path / 'label_2' / '000001.txt').read_text().startswith('Ped'):
        pytest.skip('case-insensitive file system')
    with logged_messages() as messages:
        ds = _build(tmp_path)
    assert len(ds) == 1
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [
        0, 1]
    assert any('1 label files' in m and '000001.TXT' in m for m in messages)
