"""A config's ``type`` read the same whether written as a registered name, a
scoped name or a class (pure-Python configs), by the helper and by the
checks that read users' configs through it."""
import os.path as osp
import sys

import pytest
from mmcv.ops import RoIAlign
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets import CocoDataset
from mmdet.datasets.transforms import PackDetInputs, Resize
from mmdet.models.task_modules import MaxIoUAssigner
from mmengine.config import Config
from mmengine.model.weight_init import PretrainedInit

from rcnn_plugin.apis.tta import default_tta_pipeline
from rcnn_plugin.config_doctor.data_checks import _blind_assigners
from rcnn_plugin.datasets.transforms.corruptions import insert_after_loading
from rcnn_plugin.datasets.validation import _lenient
from rcnn_plugin.deployment.export import _test_scale
from rcnn_plugin.engine.hooks import ResumableEarlyStoppingHook
from rcnn_plugin.models.peft.export import plain_config
from rcnn_plugin.models.peft.peft_detector import build_peft_detector
from rcnn_plugin.models.roi_heads.roi_extractors import TorchvisionRoIExtractor
from rcnn_plugin.utils import enable_amp, strip_remote_pretrained
from rcnn_plugin.utils.config_types import (
    cfg_type_name,
    iter_pipeline_steps,
    type_name,
)

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
    others = dict(custom_hooks=[dict(type='mmdet.NumClassCheckHook')],
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook')))
    assert not ablation._val_steers_training(others)
    others['default_hooks']['checkpoint']['save_best'] = 'auto'
    assert ablation._val_steers_training(others)


@pytest.mark.parametrize('kind', ['mmdet.PEFTDetector', build_peft_detector])
def test_peft_plain_config_reads_a_scoped_or_function_type(kind):
    cfg = Config(dict(
        model=dict(type=kind, detector_type='FasterRCNN',
                   lora=dict(rank=4)),
        custom_hooks=[dict(type='mmdet.AdapterCheckpointHook'),
                      dict(type='mmdet.NumClassCheckHook')]))
    out = plain_config(cfg)
    assert out.model.type == 'FasterRCNN' and 'lora' not in out.model
    assert [h['type'] for h in out.custom_hooks] == ['mmdet.NumClassCheckHook']


@pytest.mark.parametrize('kind', ['Pretrained', 'mmengine.Pretrained',
                                  PretrainedInit])
def test_offline_strips_every_form_of_remote_pretrained(kind):
    model = dict(backbone=dict(init_cfg=dict(
        type=kind, checkpoint='torchvision://resnet50')))
    assert strip_remote_pretrained(model) == [
        'model.backbone.init_cfg: torchvision://resnet50']
    assert model['backbone'].get('init_cfg') is None


@pytest.mark.parametrize('kind', [
    'RPNHead', 'mmdet.RPNHead'])
def test_cpu_amp_swaps_a_scoped_head(kind):
    cfg = Config.fromfile(
        f'{REPO}/configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
    cfg.model.rpn_head.type = kind
    assert 'RPNHead -> FP32PostRPNHead' in enable_amp(cfg, cuda=False)
    assert type_name(cfg.model.rpn_head.type) == 'FP32PostRPNHead'
    enable_amp(cfg, cuda=False)  # the twin is accepted as it is


@pytest.mark.parametrize('kind', ['RoIAlign', RoIAlign])
def test_torchvision_roi_extractor_takes_a_class_typed_layer(kind):
    extractor = TorchvisionRoIExtractor(
        roi_layer=dict(type=kind, output_size=7, sampling_ratio=0),
        out_channels=8, featmap_strides=[4, 8])
    assert extractor.roi_layers[0].output_size == (7, 7)


@pytest.mark.parametrize('kind', ['CocoDataset', 'mmdet.CocoDataset',
                                  'mmdet.datasets.CocoDataset', CocoDataset])
def test_dataset_check_resolves_every_form_of_dataset_type(kind):
    cfg = _lenient(dict(type=kind, data_root='d', ann_file='a.json'))
    assert cfg['pipeline'] == [] and cfg['test_mode']


def test_iter_pipeline_steps_follows_wrappers_in_data_order():
    resize = dict(type='Resize')
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ProposalBroadcaster', transforms=[resize]),
        dict(type='TestTimeAug', transforms=[
            [dict(type='Resize', scale=1), dict(type='Resize', scale=2)],
            [dict(type='LoadAnnotations')]]),
        'not a step']
    got = [(i, cfg_type_name(s)) for i, s in iter_pipeline_steps(pipeline)]
    assert got == [(0, 'LoadImageFromFile'), (1, 'Resize'),
                   (1, 'ProposalBroadcaster'), (2, 'Resize'), (2, 'Resize'),
                   (2, 'LoadAnnotations'), (2, 'TestTimeAug')]
    assert list(iter_pipeline_steps(None)) == []
