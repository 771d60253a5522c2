"""ChannelsLastDetDataPreprocessor: same values, NHWC strides, same model."""
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.models import ChannelsLastDetDataPreprocessor
from rcnn_plugin.utils.benchmark import synthetic_batch

from conftest import REPO, shrink_model

BCCD = f'{REPO}/configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
PRE = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
           bgr_to_rgb=True, pad_size_divisor=32)


def test_same_values_in_channels_last():
    batch = synthetic_batch(2, (40, 70), 2, num_classes=3)
    ref = DetDataPreprocessor(**PRE)(batch, False)['inputs']
    out = ChannelsLastDetDataPreprocessor(**PRE)(batch, False)['inputs']
    assert out.shape == ref.shape == (2, 3, 64, 96)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert not ref.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, ref)


@pytest.mark.slow
def test_detector_outputs_match_contiguous_layout():
    register_all_modules()
    cfg = Config.fromfile(BCCD)
    model_cfg = shrink_model(cfg.model)
    torch.manual_seed(0)
    ref = MODELS.build(model_cfg).eval()
    model_cfg['data_preprocessor']['type'] = 'ChannelsLastDetDataPreprocessor'
    fast = MODELS.build(model_cfg).eval()
    fast.load_state_dict(ref.state_dict())
    batch = synthetic_batch(1, (96, 128), 3, num_classes=3)
    with torch.no_grad():
        feats_ref = ref.extract_feat(ref.data_preprocessor(batch)['inputs'])
        inputs = fast.data_preprocessor(batch)['inputs']
        feats = fast.extract_feat(inputs)
        rpn_ref = ref.rpn_head(feats_ref)
        rpn = fast.rpn_head(feats)
    assert feats[0].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(feats, feats_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    # Convolution outputs agree; post-processing does not see the layout
    # (it may still pick other boxes on near-ties of random-init scores).
    for outs, outs_ref in zip(rpn, rpn_ref):
        for a, b in zip(outs, outs_ref):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_an_image_without_ground_truth_in_training():
    from mmdet.testing import demo_mm_inputs
    batch = demo_mm_inputs(batch_size=2, image_shapes=[(3, 40, 70)] * 2,
                           num_items=[2, 0], num_classes=3)
    ref = DetDataPreprocessor(**PRE)(batch, True)
    out = ChannelsLastDetDataPreprocessor(**PRE)(batch, True)
    assert out['inputs'].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out['inputs'], ref['inputs'])
    assert [len(s.gt_instances) for s in out['data_samples']] == [2, 0]
