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


def test_mask_rcnn_mask_extractor_is_swapped_and_trains_in_bf16():
    # The mask RoI extractor stayed mmcv's RoIAlign, which has no CPU
    # bfloat16 kernel in compiled mmcv.
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules

    from conftest import shrink_model
    register_all_modules()
    cfg = Config.fromfile(
        f'{REPO}/configs/balloon/mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py')
    msg = enable_amp(cfg, cuda=False)
    assert (cfg.model.roi_head.mask_roi_extractor.type ==
            'TorchvisionRoIExtractor')
    assert 'mask_roi_extractor: SingleRoIExtractor' in msg
    model = MODELS.build(shrink_model(cfg.model))
    batch = demo_mm_inputs(2, [(3, 128, 128)] * 2, num_classes=2,
                           with_mask=True)
    for sample in batch['data_samples']:  # balloon's one class
        sample.gt_instances.labels[:] = 0
    data = model.data_preprocessor(batch, True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['loss_mask'].float()).all()


def test_a_cascade_on_cpu_is_a_sentence():
    cfg = Config.fromfile(BCCD)
    cfg.model.roi_head.bbox_head = [cfg.model.roi_head.bbox_head] * 3
    with pytest.raises(ValueError, match='a list of 3 stages'):
        enable_amp(cfg, cuda=False)
