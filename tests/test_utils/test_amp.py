"""enable_amp: fp16 on CUDA, bf16 with bfloat16-safe twins on CPU."""
import pytest
from mmengine.config import Config

from rcnn_plugin.utils import enable_amp

from conftest import REPO

BCCD = f'{REPO}/configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'


def test_cpu_swaps_stock_types_for_bf16_twins():
    cfg = Config.fromfile(BCCD)
    msg = enable_amp(cfg, cuda=False)
    assert cfg.optim_wrapper.type == 'BF16AmpOptimWrapper'
    assert cfg.model.rpn_head.type == 'FP32PostRPNHead'
    assert cfg.model.roi_head.bbox_head.type == 'FP32PostShared2FCBBoxHead'
    assert (cfg.model.roi_head.bbox_roi_extractor.type ==
            'TorchvisionRoIExtractor')
    assert 'RPNHead -> FP32PostRPNHead' in msg
    # Idempotent: plugin types are accepted as they are.
    enable_amp(cfg, cuda=False)
    assert cfg.model.rpn_head.type == 'FP32PostRPNHead'


def test_cuda_keeps_mmdet_fp16_amp():
    cfg = Config.fromfile(BCCD)
    enable_amp(cfg, cuda=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.model.rpn_head.type == 'RPNHead'


def test_unknown_head_on_cpu_is_an_error_naming_the_key():
    cfg = Config.fromfile(BCCD)
    cfg.model.roi_head.bbox_head.type = 'Shared4Conv1FCBBoxHead'
    with pytest.raises(ValueError, match='roi_head.bbox_head'):
        enable_amp(cfg, cuda=False)
