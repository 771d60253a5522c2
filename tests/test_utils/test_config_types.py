"""A config's ``type`` read the same whether written as a registered name, a
scoped name or a class (pure-Python configs), by the helper and by the
checks that read users' configs through it."""
import os.path as osp
import sys

import pytest
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets.transforms import PackDetInputs, Resize
from mmdet.models.task_modules import MaxIoUAssigner
from mmengine.config import Config

from rcnn_plugin.apis.tta import default_tta_pipeline
from rcnn_plugin.config_doctor.data_checks import _blind_assigners
from rcnn_plugin.datasets.transforms.corruptions import insert_after_loading
from rcnn_plugin.deployment.export import _test_scale
from rcnn_plugin.engine.hooks import ResumableEarlyStoppingHook
from rcnn_plugin.models.peft.export import plain_config
from rcnn_plugin.utils.config_types import cfg_type_name, type_name

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
import run_ablation as ablation  # noqa: E402


def _forms(cls):
    """The three ways a config names ``cls``."""
    return [cls.__name__, f'mmdet.{cls.__name__}', cls]


def test_type_name_of_names_scoped_names_and_classes():
    assert type_name('Resize') == 'Resize'
    assert type_name('mmdet.Resize') == 'Resize'
    assert type_name(Resize) == 'Resize'
    assert type_name(None) == ''
    assert type_name(3) == ''
    # str(cls) is "<class '...Resize'>": the old reading gave "Resize'>".
    assert str(Resize).split('.')[-1] != 'Resize'


def test_cfg_type_name_defaults_and_non_dicts():
    assert cfg_type_name(dict(type='mmengine.LinearLR')) == 'LinearLR'
    assert cfg_type_name({}, 'EpochBasedTrainLoop') == 'EpochBasedTrainLoop'
    assert cfg_type_name({}) == ''
    assert cfg_type_name(None) == ''
    assert cfg_type_name('Resize') == ''


@pytest.mark.parametrize('kind', _forms(PackDetInputs))
def test_tta_pipeline_accepts_every_form_of_pack(kind):
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type=kind, meta_keys=('img_id', 'img_path'))]
    out = default_tta_pipeline(pipeline)
    assert cfg_type_name(out[-1]) == 'TestTimeAug'
    pack = out[-1]['transforms'][1][0]
    assert pack['type'] is kind and 'flip' in pack['meta_keys']


@pytest.mark.parametrize('kind', _forms(LoadImageFromFile))
def test_corruption_goes_after_every_form_of_loader(kind):
    pipeline = [dict(type=kind), dict(type='PackDetInputs')]
    out = insert_after_loading(pipeline, dict(type='SeededCorrupt'))
    assert [cfg_type_name(t) for t in out] == [
        'LoadImageFromFile', 'SeededCorrupt', 'PackDetInputs']


@pytest.mark.parametrize('kind', _forms(Resize))
def test_onnx_meta_finds_every_form_of_resize(kind):
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type=kind, scale=(320, 240), keep_ratio=True),
        dict(type='PackDetInputs')]))))
    assert _test_scale(cfg) == [320, 240]


@pytest.mark.parametrize('kind', _forms(MaxIoUAssigner))
def test_ignore_check_reads_every_form_of_assigner(kind):
    train_cfg = dict(rpn=dict(assigner=dict(type=kind, pos_iou_thr=0.7)),
                     rcnn=dict(assigner=dict(type=kind, ignore_iof_thr=0.5)))
    assert _blind_assigners(train_cfg, 'model') == [
        'model.train_cfg.rpn.assigner']


@pytest.mark.parametrize('kind', [
    'EarlyStoppingHook', 'mmengine.EarlyStoppingHook',
    'ResumableEarlyStoppingHook', ResumableEarlyStoppingHook])
def test_ablation_knows_early_stopping_steers_training(kind):
    cfg = dict(custom_hooks=[dict(type=kind, monitor='pascal_voc/mAP')])
    assert ablation._val_steers_training(cfg)
    assert not ablation._val_steers_training(dict(custom_hooks=[]))


def test_peft_plain_config_reads_a_scoped_type():
    cfg = Config(dict(
        model=dict(type='mmdet.PEFTDetector', detector_type='FasterRCNN',
                   lora=dict(rank=4)),
        custom_hooks=[dict(type='mmdet.AdapterCheckpointHook'),
                      dict(type='mmdet.NumClassCheckHook')]))
    out = plain_config(cfg)
    assert out.model.type == 'FasterRCNN' and 'lora' not in out.model
    assert [h['type'] for h in out.custom_hooks] == ['mmdet.NumClassCheckHook']
