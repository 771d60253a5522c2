"""tools/model_converters/inspect_checkpoint.py on a small Faster R-CNN."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'model_converters', 'inspect_checkpoint.py')
BASE = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
model = dict(
    backbone=dict(widen_factor=0.25, init_cfg=None),
    neck=dict(in_channels=[8, 8, 24, 1280], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32,
                       num_classes={num_classes})))
"""


def _tool():
    spec = importlib.util.spec_from_file_location('inspect_ckpt', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('inspect')
    configs = {}
    for n in (3, 5):
        configs[n] = str(root / f'tiny_{n}.py')
        open(configs[n], 'w').write(CONFIG.format(base=BASE, num_classes=n))
    register_all_modules()
    model = MODELS.build(Config.fromfile(configs[3]).model)
    state_dict = model.state_dict()
    ckpt = str(root / 'model.pth')
    torch.save({'meta': {'dataset_meta': {'classes': ('RBC', 'WBC', 'Pl')},
                         'epoch': 4},
                'state_dict': state_dict}, ckpt)
    edited = dict(state_dict)
    del edited['rpn_head.rpn_cls.bias']
    edited['extra.weight'] = torch.zeros(3)
    odd = str(root / 'edited.pth')
    torch.save({'state_dict': edited}, odd)
    return ckpt, odd, configs


def test_prints_classes_meta_and_modules(files, capsys):
    assert _tool().main([files[0]]) == 0
    out = capsys.readouterr().out
    assert 'classes (3): RBC, WBC, Pl' in out
    assert 'meta.epoch: 4' in out
    assert 'roi_head.bbox_head' in out and 'backbone.conv1' in out


def test_matching_config_loads_everything(files, capsys):
    assert _tool().main([files[0], '--config', files[2][3], '--strict']) == 0
    out = capsys.readouterr().out
    assert 'missing (0)' in out and 'unexpected (0)' in out
    assert 'shape mismatch (0)' in out


def test_reports_missing_unexpected_and_mismatched(files, capsys):
    code = _tool().main([files[1], '--config', files[2][5], '--strict',
                         '--all'])
    out = capsys.readouterr().out
    assert code == 1
    assert 'missing (1):\n    rpn_head.rpn_cls.bias' in out
    assert 'unexpected (1):\n    extra.weight' in out
    assert 'shape mismatch (4)' in out
    assert ('roi_head.bbox_head.fc_cls.weight: checkpoint (4, 32) vs model '
            '(6, 32)') in out
    assert 'classes: (none in meta)' in out
    assert 'extra.weight' in out and '(3,)' in out  # --all


def test_corrupt_file_is_a_clear_error(tmp_path):
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='broken.pth is not a readable'):
        _tool().main([str(broken)])
