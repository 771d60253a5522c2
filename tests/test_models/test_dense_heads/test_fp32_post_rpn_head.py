"""FP32PostRPNHead / FP32PostShared2FCBBoxHead: same as mmdet in fp32."""
import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmengine.config import ConfigDict

from rcnn_plugin.models import FP32PostRPNHead, FP32PostShared2FCBBoxHead
from rcnn_plugin.models.utils import to_float32

RPN = dict(
    in_channels=8, feat_channels=8,
    anchor_generator=dict(type='AnchorGenerator', scales=[8],
                          ratios=[0.5, 1.0, 2.0], strides=[4, 8]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4,
                    target_stds=[1.0] * 4))
TEST_CFG = ConfigDict(nms_pre=100, max_per_img=20, min_bbox_size=0,
                      nms=dict(type='nms', iou_threshold=0.7))
META = [dict(img_shape=(64, 96), scale_factor=(1., 1.))]


def _rpn_outputs():
    gen = torch.Generator().manual_seed(0)
    cls = [torch.randn(1, 3, 16 // s, 24 // s, generator=gen)
           for s in (1, 2)]
    reg = [torch.randn(1, 12, 16 // s, 24 // s, generator=gen) * 0.1
           for s in (1, 2)]
    return cls, reg


def test_rpn_same_as_mmdet_in_fp32_and_float_in_bf16():
    ref, head = RPNHead(**RPN), FP32PostRPNHead(**RPN)
    cls, reg = _rpn_outputs()
    out_ref = ref.predict_by_feat(cls, reg, batch_img_metas=META,
                                  cfg=TEST_CFG)[0]
    out = head.predict_by_feat(cls, reg, batch_img_metas=META,
                               cfg=TEST_CFG)[0]
    assert len(out) == len(out_ref) > 0
    assert torch.equal(out.bboxes, out_ref.bboxes)
    assert torch.equal(out.scores, out_ref.scores)
    cls16 = [c.bfloat16() for c in cls]
    reg16 = [r.bfloat16() for r in reg]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out16 = head.predict_by_feat(cls16, reg16, batch_img_metas=META,
                                     cfg=TEST_CFG)[0]
    assert out16.bboxes.dtype == torch.float32
    # Same boxes as float32 post-processing of the bf16-rounded outputs.
    out_up = ref.predict_by_feat(to_float32(cls16), to_float32(reg16),
                                 batch_img_metas=META, cfg=TEST_CFG)[0]
    assert torch.equal(out16.bboxes, out_up.bboxes)


def test_bbox_head_same_as_mmdet_and_empty_rois():
    kwargs = dict(in_channels=4, fc_out_channels=16, roi_feat_size=7,
                  num_classes=3)
    torch.manual_seed(0)
    ref = Shared2FCBBoxHead(**kwargs)
    head = FP32PostShared2FCBBoxHead(**kwargs)
    head.load_state_dict(ref.state_dict())
    cfg = ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                     max_per_img=10)
    rois = torch.tensor([[0., 2., 3., 30., 40.], [0., 10., 5., 50., 60.]])
    cls, reg = ref(torch.randn(2, 4, 7, 7))
    args = ((rois, ), (cls, ), (reg, ), META)
    out_ref = ref.predict_by_feat(*args, rcnn_test_cfg=cfg)[0]
    out = head.predict_by_feat(*args, rcnn_test_cfg=cfg)[0]
    assert torch.equal(out.bboxes, out_ref.bboxes) and len(out) > 0
    empty = head.predict_by_feat((rois[:0], ), (cls[:0], ), (reg[:0], ),
                                 META, rcnn_test_cfg=cfg)[0]
    assert len(empty) == 0


def test_rpn_with_no_proposal_left_in_bf16():
    # min_bbox_size above every box: nothing survives the filter
    head = FP32PostRPNHead(**RPN)
    cls, reg = _rpn_outputs()
    cfg = ConfigDict(TEST_CFG, min_bbox_size=10_000)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = head.predict_by_feat([c.bfloat16() for c in cls],
                                   [r.bfloat16() for r in reg],
                                   batch_img_metas=META, cfg=cfg)[0]
    assert len(out) == 0 and out.bboxes.shape == (0, 4)
    assert out.bboxes.dtype == torch.float32
