"""torchvision detection models converted to mmdet compute the same thing.

Both models get random weights and the same preprocessed image tensor;
torchvision's resize is bypassed by calling its components directly. To make
the comparison meaningful with random weights, BatchNorm statistics are
randomised and the RPN objectness and the class logits are scaled up (x10;
x100 for v2 and MobileNetV3) so that scores spread instead of sitting at 0.5
and 1 / num_classes.
"""
import importlib.util
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from torchvision.models import mobilenet_v3_large, resnet50
from torchvision.models.detection import (
    FasterRCNN,
    MaskRCNN,
    fasterrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    _mobilenet_extractor,
    _resnet_fpn_extractor,
)
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou
from torchvision.ops.misc import FrozenBatchNorm2d

from rcnn_plugin.models.utils import ARCHS, convert_torchvision_detector

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'model_converters', 'torchvision2mmdet.py')
CLASSES = ['a', 'b', 'c', 'd']
NUM_CLASSES = len(CLASSES)
SIZE = 192
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def _tool():
    spec = importlib.util.spec_from_file_location('tv2mm', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchvision_model(arch):
    """Random-weight torchvision model, pretrained layout (FrozenBN)."""
    torch.manual_seed(0)
    if arch == 'fasterrcnn_resnet50_fpn_v2':
        model = fasterrcnn_resnet50_fpn_v2(num_classes=NUM_CLASSES + 1)
    elif arch == 'fasterrcnn_mobilenet_v3_large_fpn':
        backbone = _mobilenet_extractor(
            mobilenet_v3_large(norm_layer=FrozenBatchNorm2d), True, 3)
        anchors = AnchorGenerator(((32, 64, 128, 256, 512), ) * 3,
                                  ((0.5, 1.0, 2.0), ) * 3)
        model = FasterRCNN(backbone, NUM_CLASSES + 1,
                           rpn_anchor_generator=anchors,
                           rpn_score_thresh=0.05)
    else:  # as torchvision builds them around pretrained weights
        backbone = _resnet_fpn_extractor(
            resnet50(norm_layer=FrozenBatchNorm2d), 3)
        cls = MaskRCNN if arch.startswith('mask') else FasterRCNN
        model = cls(backbone, num_classes=NUM_CLASSES + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (FrozenBatchNorm2d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1)
                m.bias.normal_(0, 0.1)
        model.rpn.head.cls_logits.weight.mul_(10)
        # v2's BatchNorm box head and MobileNet give flatter logits.
        flat = arch.endswith('v2') or 'mobilenet' in arch
        model.roi_heads.box_predictor.cls_score.weight.mul_(
            100 if flat else 10)
    return model.eval()


def mmdet_model(arch, path):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, ARCHS[arch]))
    cfg.model.roi_head.bbox_head.num_classes = NUM_CLASSES
    if 'mask_head' in cfg.model.roi_head:
        cfg.model.roi_head.mask_head.num_classes = NUM_CLASSES
    model = MODELS.build(cfg.model)
    # strict: every key present, no size mismatch.
    load_checkpoint(model, path, map_location='cpu', strict=True)
    return model.eval()


def run_both(tv, mm, num_proposals, num_dets):
    tv.rpn._post_nms_top_n['testing'] = num_proposals
    tv.roi_heads.detections_per_img = num_dets
    mm.rpn_head.test_cfg.max_per_img = num_proposals
    mm.roi_head.test_cfg.max_per_img = num_dets
    torch.manual_seed(1)
    x = (torch.rand(1, 3, SIZE, SIZE) - MEAN) / STD  # torchvision's Normalize
    meta = dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                batch_input_shape=(SIZE, SIZE), scale_factor=(1., 1.))
    samples = [DetDataSample(metainfo=meta)]
    with torch.no_grad():
        feats = tv.backbone(x)
        images = ImageList(x, [(SIZE, SIZE)])
        proposals, _ = tv.rpn(images, feats)
        dets, _ = tv.roi_heads(feats, proposals, images.image_sizes)
        mfeats = mm.extract_feat(x)
        rpn = mm.rpn_head.predict(mfeats, samples, rescale=False)
        res = mm.roi_head.predict(mfeats, rpn, samples, rescale=False)
    return feats, proposals[0], dets[0], mfeats, rpn[0], res[0]


def paired_fraction(dets, res):
    """Share of torchvision detections with an mmdet one of the same class,
    IoU > 0.99 and score difference < 0.01."""
    if not len(dets['boxes']):
        return 1.0 if not len(res.bboxes) else 0.0
    iou = box_iou(dets['boxes'], res.bboxes)
    same = (dets['labels'][:, None] - 1) == res.labels[None]
    close = (dets['scores'][:, None] - res.scores[None]).abs() < 0.01
    return ((iou > 0.99) & same & close).any(1).float().mean().item()


@pytest.fixture(scope='module')
def faster_v1(tmp_path_factory):
    """The v1 Faster R-CNN, saved as torchvision would save it."""
    tv = torchvision_model('fasterrcnn_resnet50_fpn')
    path = str(tmp_path_factory.mktemp('tv') / 'tv.pth')
    torch.save(tv.state_dict(), path)
    return tv, path


def check_equivalence(tv, mm, num_proposals, num_dets):
    feats, props, dets, mfeats, rpn, res = run_both(
        tv, mm, num_proposals, num_dets)
    for ours, theirs in zip(mfeats, feats.values()):
        torch.testing.assert_close(ours, theirs)
    # RPN: the same proposals, in the same order but for near-tie swaps
    # (fewer than asked for when a score threshold applies).
    assert 0 < len(rpn.bboxes) == len(props) <= num_proposals
    iou = box_iou(props, rpn.bboxes)
    assert (iou.max(1).values > 0.99).all()
    assert (iou.diagonal() > 0.99).float().mean() >= 0.95
    # Detections: scores well above uniform (the check means something).
    assert len(dets['boxes']) == num_dets
    assert dets['scores'].max() > 2 / (NUM_CLASSES + 1)
    assert paired_fraction(dets, res) >= 0.95
    return feats, dets, mfeats


@pytest.mark.slow
def test_faster_rcnn_v1_matches_torchvision(faster_v1, tmp_path):
    tv, src = faster_v1
    dst = str(tmp_path / 'mm.pth')
    _tool().main([src, dst, '--classes', *CLASSES])
    check_equivalence(tv, mmdet_model('fasterrcnn_resnet50_fpn', dst),
                      num_proposals=200, num_dets=100)


@pytest.mark.slow
@pytest.mark.parametrize('arch,num_proposals,num_dets', [
    ('maskrcnn_resnet50_fpn', 100, 10),
    ('fasterrcnn_resnet50_fpn_v2', 60, 50),
    ('fasterrcnn_mobilenet_v3_large_fpn', 300, 100),
])
def test_other_architectures_match_torchvision(tmp_path, arch, num_proposals,
                                            num_dets):
    tv = torchvision_model(arch)
    state_dict, found, num_classes = convert_torchvision_detector(
        tv.state_dict())
    assert (found, num_classes) == (arch, len(CLASSES))
    dst = str(tmp_path / 'mm.pth')
    torch.save({'state_dict': state_dict}, dst)
    mm = mmdet_model(arch, dst)
    feats, dets, mfeats = check_equivalence(tv, mm, num_proposals, num_dets)
    if arch.startswith('mask'):  # mask logits on the same boxes
        boxes = dets['boxes']
        with torch.no_grad():
            pooled = tv.roi_heads.mask_roi_pool(feats, [boxes],
                                                [(SIZE, SIZE)])
            theirs = tv.roi_heads.mask_predictor(
                tv.roi_heads.mask_head(pooled))
            ours = mm.roi_head._mask_forward(
                mfeats, bbox2roi([boxes]))['mask_preds']
        torch.testing.assert_close(ours, theirs[:, 1:], atol=1e-4,
                                   rtol=1e-4)


def test_coco_ids_become_mmdet_coco_classes(faster_v1, tmp_path):
    state_dict = dict(faster_v1[0].state_dict())
    tv_cls = torch.randn(91, 1024)
    tv_reg = torch.randn(91 * 4, 1024)
    state_dict.update({
        'roi_heads.box_predictor.cls_score.weight': tv_cls,
        'roi_heads.box_predictor.cls_score.bias': torch.randn(91),
        'roi_heads.box_predictor.bbox_pred.weight': tv_reg,
        'roi_heads.box_predictor.bbox_pred.bias': torch.randn(91 * 4)})
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'mm.pth')
    torch.save(state_dict, src)
    _tool().main([src, dst])
    ckpt = torch.load(dst, weights_only=True)
    classes = ckpt['meta']['dataset_meta']['classes']
    assert len(classes) == 80 and classes[11] == 'stop sign'
    cls = ckpt['state_dict']['roi_head.bbox_head.fc_cls.weight']
    reg = ckpt['state_dict']['roi_head.bbox_head.fc_reg.weight']
    # torchvision: 0 background, 1 person, 12 'N/A', 13 stop sign
    assert torch.equal(cls[0], tv_cls[1]) and torch.equal(cls[11], tv_cls[13])
    assert torch.equal(cls[80], tv_cls[0])  # background moves last
    assert torch.equal(reg[44:48], tv_reg[52:56])
    assert cls.shape == (81, 1024) and reg.shape == (320, 1024)


def test_bad_inputs(faster_v1, tmp_path):
    src = faster_v1[1]
    with pytest.raises(ValueError, match='4 foreground classes.*--classes'):
        _tool().main([src, str(tmp_path / 'x.pth')])
    with pytest.raises(ValueError, match='--classes has 2 names'):
        _tool().main([src, str(tmp_path / 'x.pth'), '--classes', 'a', 'b'])
    other = str(tmp_path / 'retina.pth')
    torch.save({'head.classification_head.cls_logits.weight':
                torch.zeros(2)}, other)
    with pytest.raises(ValueError, match='Supported: fasterrcnn_resnet50_f'):
        _tool().main([other, str(tmp_path / 'x.pth')])
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(open(src, 'rb').read()[:1000])
    with pytest.raises(ValueError, match='not a readable torch checkpoint'):
        _tool().main([str(broken), str(tmp_path / 'x.pth')])
