"""The unlabelled target loader hands on no labels and is never empty."""
import os.path as osp

import pytest
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from projects.DomainAdaptation.domain_adaptation import UnlabelledDataset

from conftest import REPO

DA = osp.join(REPO, 'projects', 'DomainAdaptation', 'configs',
              'da-faster-rcnn_mobilenetv2_fpn-128_800i_bccd-to-bcd.py')


def _target_cfg(tmp_path, config=DA):
    """A config's unlabelled target over a small CSV with boxes."""
    (tmp_path / 'images').mkdir()
    rows = []
    for i in range(6):
        Image.new('RGBA', (64, 64)).save(tmp_path / 'images' / f'{i}.png')
        rows.append(f'{i},{i}.png,0.1,0.1,0.6,0.6,{"wbc" if i % 2 else "rbc"}')
    (tmp_path / 'annotations.csv').write_text(
        'image_id,image,xmin,ymin,xmax,ymax,label\n' + '\n'.join(rows))
    cfg = Config.fromfile(config).train_dataloader.dataset
    cfg = cfg.datasets[1] if 'datasets' in cfg else cfg
    cfg.dataset.dataset.data_root = str(tmp_path)
    cfg.dataset.split_dir = str(tmp_path / 'split')
    return cfg


def test_target_boxes_never_reach_the_pipeline(tmp_path):
    register_all_modules()
    init_default_scope('mmdet')
    ds = UnlabelledDataset(**{k: v for k, v in _target_cfg(tmp_path).items()
                              if k != 'type'})
    assert len(ds) == 4  # the split's train part of 6 images
    assert ds.source.get_data_info(0)['instances']  # the reader has boxes
    assert ds.get_data_info(0)['instances'] == []
    item = ds[0]
    assert item['data_samples']['sup'] is None  # no source branch
    assert len(item['data_samples']['unsup'].gt_instances) == 0


class _Empty:
    metainfo = dict(classes=('RBC', ))
    data_root = 'nowhere/'

    def full_init(self):
        pass

    def __len__(self):
        return 0


def test_empty_unlabelled_target_is_an_error():
    with pytest.raises(ValueError, match='unlabelled target .* no images'):
        UnlabelledDataset(_Empty())


def test_source_free_loader_feeds_the_model_target_branches(tmp_path):
    """The source-free config's real pipeline: weak and strong views of
    target images, no source branch, no boxes; one loss step on them."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.dataset import pseudo_collate

    from conftest import shrink_model
    register_all_modules()
    init_default_scope('mmdet')
    sf = osp.join(osp.dirname(DA), 'source-free-teacher_faster-rcnn_'
                  'mobilenetv2_fpn-128_400i_bccd-to-bcd.py')
    cfg = _target_cfg(tmp_path, sf)
    ds = UnlabelledDataset(**{k: v for k, v in cfg.items() if k != 'type'})
    batch = pseudo_collate([ds[0], ds[1]])
    assert set(batch['inputs']) == {'unsup_teacher', 'unsup_student'}
    model_cfg = Config.fromfile(sf).model
    model_cfg.detector = shrink_model(model_cfg.detector)
    model_cfg.semi_train_cfg.cls_pseudo_thr = 0.0
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(batch, True)
    for sample in data['data_samples']['unsup_student']:
        assert len(sample.gt_instances) == 0  # the reader's boxes withheld
    losses = model(**data, mode='loss')
    assert all(key.startswith('unsup_') for key in losses)
    assert torch.isfinite(losses['unsup_loss_cls'])


def test_config_doctor_accepts_the_unlabelled_target(tmp_path):
    """Source-free training has only unlabelled images: the doctor's
    empty_data check says so instead of stopping the run."""
    from rcnn_plugin.config_doctor import run_checks
    register_all_modules()
    sf = osp.join(osp.dirname(DA), 'source-free-teacher_faster-rcnn_'
                  'mobilenetv2_fpn-128_400i_bccd-to-bcd.py')
    cfg = Config.fromfile(sf)
    cfg.train_dataloader.dataset = _target_cfg(tmp_path, sf)
    findings = run_checks(cfg, checks=['empty_data'])
    train = [f for f in findings
             if f.key.startswith('train_dataloader')]
    assert [(f.severity, f.check) for f in train] == [('info', 'empty_data')]
    assert 'unlabelled by design (UnlabelledDataset, 4 images)' in \
        train[0].message
