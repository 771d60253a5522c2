"""BCCD on the real data in ../shared/datasets/bccd (skipped if absent)."""
import os.path as osp
import shutil

import pytest
from mmdet.utils import register_all_modules

from rcnn_plugin.datasets import BCCDDataset

from conftest import bccd_or_skip


def _bccd(root, split, **kwargs):
    ds = BCCDDataset(
        data_root=root,
        ann_file=f'ImageSets/Main/{split}.txt',
        data_prefix=dict(sub_data_root=''),
        pipeline=[],
        **kwargs)
    ds.full_init()
    return ds


@pytest.mark.parametrize('split,count', [('train', 205), ('val', 87),
                                         ('test', 72), ('trainval', 292)])
def test_official_split_sizes(split, count):
    assert len(_bccd(bccd_or_skip(), split, test_mode=True)) == count


def test_metainfo():
    assert BCCDDataset.METAINFO['classes'] == ('RBC', 'WBC', 'Platelets')


def test_zero_area_boxes_are_dropped_with_a_count():
    root = bccd_or_skip()
    ds = _bccd(root, 'trainval', test_mode=True)
    ds_test = _bccd(root, 'test', test_mode=True)
    dropped = {**ds.dropped_boxes, **ds_test.dropped_boxes}
    assert {osp.basename(k): v for k, v in dropped.items()} == {
        'BloodImage_00338.xml': 1, 'BloodImage_00343.xml': 1}
    total = 0
    for d in (ds, ds_test):
        for i in range(len(d)):
            for inst in d.get_data_info(i)['instances']:
                x1, y1, x2, y2 = inst['bbox']
                assert x2 > x1 and y2 > y1
                total += 1
    # 4852 + 36 objects in the XML files, 2 of them degenerate.
    assert total == 4886


def test_unknown_class_is_an_error_naming_the_file(tmp_path):
    src = bccd_or_skip()
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (tmp_path / sub).mkdir(parents=True)
    for img_id in ('BloodImage_00000', 'BloodImage_00001'):
        shutil.copy(osp.join(src, 'JPEGImages', f'{img_id}.jpg'),
                    tmp_path / 'JPEGImages')
    good = open(osp.join(src, 'Annotations', 'BloodImage_00000.xml')).read()
    (tmp_path / 'Annotations' / 'BloodImage_00000.xml').write_text(good)
    (tmp_path / 'Annotations' / 'BloodImage_00001.xml').write_text(
        good.replace('<name>WBC</name>', '<name>wbc</name>'))
    (tmp_path / 'ImageSets/Main/train.txt').write_text(
        'BloodImage_00000\nBloodImage_00001\n')
    with pytest.raises(ValueError) as err:
        _bccd(str(tmp_path), 'train')
    assert 'BloodImage_00001.xml' in str(err.value)
    assert "'wbc'" in str(err.value)


def test_train_pipeline_of_the_config_runs():
    """The BCCD config's own train pipeline loads a real image."""
    from mmengine.config import Config
    from mmengine.registry import DATASETS

    from conftest import REPO
    root = bccd_or_skip()
    register_all_modules()
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'))
    cfg.train_dataloader.dataset.data_root = root + '/'
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 480, 640)
    assert len(sample['data_samples'].gt_instances) > 0
