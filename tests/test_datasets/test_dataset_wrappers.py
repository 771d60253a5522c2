"""ImageSubsetDataset: order, errors, samplers and the val metrics."""
import pytest
import torch
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmdet.evaluation import CocoMetric, VOCMetric
from mmdet.registry import DATASETS
from mmengine.dataset import DefaultSampler
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from PIL import Image

from rcnn_plugin.datasets import (
    AnnotationError,
    ImageSubsetDataset,
    update_inner_dataset_cfg,
)

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'instances')),
]


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')  # the pipeline's transforms are mmdet's


def _csv_dataset(root, sizes=((40, 20), (20, 40), (40, 20))):
    (root / 'images').mkdir()
    rows = []
    for i, size in enumerate(sizes):
        Image.new('RGB', size).save(root / 'images' / f'{i}.png')
        rows.append(f'images/{i}.png,2,2,15,15,{"ab"[i % 2]}')
    (root / 'boxes.csv').write_text('image,xmin,ymin,xmax,ymax,label\n' +
                                    '\n'.join(rows) + '\n')
    return dict(type='CSVDataset', data_root=str(root), ann_file='boxes.csv',
                data_prefix=dict(img=''), pipeline=PIPELINE)


def _subset(root, lines, **kwargs):
    path = root / 'list.txt'
    path.write_text(''.join(line + '\n' for line in lines))
    return ImageSubsetDataset(_csv_dataset(root), str(path), **kwargs)


def test_keeps_listed_images_in_list_order(tmp_path):
    ds = _subset(tmp_path, ['images/2.png', '', str(tmp_path / 'images' /
                                                     '0.png')])
    assert len(ds) == 2
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == [
        'images/2.png', 'images/0.png']
    assert ds.metainfo['classes'] == ('a', 'b')
    assert ds.get_cat_ids(1) == [0]
    assert ds[0]['data_samples'].img_path.endswith('2.png')
    assert not ds.test_mode and ds.bad_images == {}
    assert not hasattr(ds, 'dataset')  # stats count the subset, not all
    with pytest.raises(AttributeError, match='no attribute'):
        ds.not_there  # noqa: B018


@pytest.mark.parametrize('lines,match', [
    ([], r'list\.txt: lists no images'),
    (['', '  '], r'list\.txt: lists no images'),
    (['images/0.png', 'images/9.png'],
     r"list\.txt:2: 'images/9.png' matches no image of the dataset"),
    (['images/1.png', './images/1.png'],
     r"list\.txt:2: '\./images/1\.png' is listed twice \(first on line 1"),
])
def test_bad_lists_name_file_and_line(tmp_path, lines, match):
    with pytest.raises(AnnotationError, match=match):
        _subset(tmp_path, lines)


def test_utf8_bom_in_image_list(tmp_path):
    # the BOM was read into the first entry: "matches no image"
    (tmp_path / 'list.txt').write_text('images/1.png\nimages/0.png\n',
                                       encoding='utf-8-sig')
    ds = ImageSubsetDataset(_csv_dataset(tmp_path), str(tmp_path /
                                                        'list.txt'))
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == [
        'images/1.png', 'images/0.png']


def test_builds_lazily_from_config_and_forwards_test_mode(tmp_path):
    (tmp_path / 'list.txt').write_text('images/1.png\n')
    ds = DATASETS.build(dict(
        type='ImageSubsetDataset', lazy_init=True,
        dataset=dict(_csv_dataset(tmp_path), test_mode=True),
        img_list=str(tmp_path / 'list.txt')))
    assert ds.indices == []  # not read yet
    assert len(ds) == 1 and ds.test_mode
    with pytest.raises(FileNotFoundError, match='img_list .* does not'):
        ImageSubsetDataset(ds.source, str(tmp_path / 'nope.txt'))


def test_aspect_ratio_batch_sampler(tmp_path):
    ds = _subset(tmp_path, ['images/0.png', 'images/1.png', 'images/2.png'])
    sampler = AspectRatioBatchSampler(DefaultSampler(ds, shuffle=False),
                                      batch_size=2)
    batches = list(sampler)
    assert sorted(map(sorted, batches)) == [[0, 2], [1]]  # wide / tall


def _perfect(sample):
    gt = sample.gt_instances
    sample.pred_instances = InstanceData(
        bboxes=gt.bboxes.clone(), labels=gt.labels.clone(),
        scores=torch.ones(len(gt)))
    return sample.to_dict()


@pytest.mark.parametrize('metric,key', [
    (CocoMetric(metric='bbox'), 'coco/bbox_mAP'),
    (VOCMetric(), 'pascal_voc/mAP'),
])
def test_works_as_val_set_with_mmdet_metrics(tmp_path, metric, key):
    ds = _subset(tmp_path, ['images/2.png', 'images/1.png'])
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        metric.process({}, [_perfect(ds[i]['data_samples'])])
    assert metric.evaluate(len(ds))[key] == pytest.approx(1.0)


def test_update_inner_dataset_cfg_goes_through_wrappers():
    leaf = dict(type='CocoDataset', ann_file='a.json')
    other = dict(type='CocoDataset', ann_file='b.json')
    cfg = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ClassSubsetDataset', classes=('a', ), dataset=dict(
            type='ConcatDataset', datasets=[leaf, other])))
    assert update_inner_dataset_cfg(cfg, test_mode=True, pipeline=[]) is cfg
    assert leaf == dict(type='CocoDataset', ann_file='a.json',
                        test_mode=True, pipeline=[])
    assert other['test_mode'] and other['pipeline'] == []
    # The wrappers keep their own keys only.
    assert set(cfg) == {'type', 'times', 'dataset'}
    assert set(cfg['dataset']) == {'type', 'classes', 'dataset'}
    assert set(cfg['dataset']['dataset']) == {'type', 'datasets'}
    plain = dict(type='CocoDataset')
    assert update_inner_dataset_cfg(plain, test_mode=True) == dict(
        type='CocoDataset', test_mode=True)


def test_a_pipeline_returning_none_draws_another_listed_image(
        tmp_path, monkeypatch):
    ds = _subset(tmp_path, ['images/0.png', 'images/1.png', 'images/2.png'])
    tried = []

    def prepare(i):  # None for every image but 2.png
        tried.append(ds.source.get_data_info(i)['img_path'])
        return {'i': i} if tried[-1].endswith('2.png') else None

    monkeypatch.setattr(ds.source, 'prepare_data', prepare)
    assert ds[0] == {'i': ds.indices[2]}
    monkeypatch.setattr(ds.source, 'prepare_data',
                        lambda i: tried.append(
                            ds.source.get_data_info(i)['img_path']))
    monkeypatch.setattr(ds.source, 'max_refetch', 2)
    tried.clear()
    with pytest.raises(RuntimeError) as err:
        ds[1]
    # the last image tried is named (it used to be one drawn after it)
    assert len(tried) == 3 and tried[-1] in str(err.value)
    assert 'the 2 other images drawn after it' in str(err.value)
    monkeypatch.setattr(ds.source, 'test_mode', True)
    tried.clear()
    with pytest.raises(RuntimeError, match='test mode'):
        ds[1]
    assert len(tried) == 1
