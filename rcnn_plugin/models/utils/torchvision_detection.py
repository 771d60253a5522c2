"""Convert torchvision detection state dicts to mmdet key names.

Supported architectures (torchvision builder -> mmdet config):

- ``fasterrcnn_resnet50_fpn`` -> ``configs/torchvision/
  faster-rcnn_r50_fpn_torchvision_coco.py``
- ``maskrcnn_resnet50_fpn`` -> ``configs/torchvision/
  mask-rcnn_r50_fpn_torchvision_coco.py``
- ``fasterrcnn_resnet50_fpn_v2`` -> ``configs/torchvision/
  faster-rcnn_r50_fpn-bn_torchvision_coco.py``
- ``fasterrcnn_mobilenet_v3_large_fpn`` -> ``configs/torchvision/
  faster-rcnn_mobilenetv3-large_fpn_torchvision_coco.py``
  (backbone: :class:`TorchvisionBackbone`)

What differs between the two layouts, besides names:

- classes: torchvision puts background FIRST (row 0 of ``cls_score``),
  mmdet LAST; torchvision's ``bbox_pred`` and ``mask_fcn_logits`` have a
  row block for background, mmdet's have none (dropped here);
- ``FrozenBatchNorm2d`` has no ``num_batches_tracked``; it is added (0) so
  the result loads with ``strict=True`` into mmdet's ``BN``.

Anchors, RoI pooling, box coding and normalisation are config settings;
see the configs and their README.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import Tensor

ARCHS = {
    'fasterrcnn_resnet50_fpn':
    'configs/torchvision/faster-rcnn_r50_fpn_torchvision_coco.py',
    'maskrcnn_resnet50_fpn':
    'configs/torchvision/mask-rcnn_r50_fpn_torchvision_coco.py',
    'fasterrcnn_resnet50_fpn_v2':
    'configs/torchvision/faster-rcnn_r50_fpn-bn_torchvision_coco.py',
    'fasterrcnn_mobilenet_v3_large_fpn':
    'configs/torchvision/faster-rcnn_mobilenetv3-large_fpn_torchvision_coco.py',
}

# (torchvision pattern, mmdet replacement); ``(?:0\.)?`` accepts the key
# names of torchvision < 0.13 too (before Conv2dNormActivation).
_COMMON = [
    (r'backbone\.body\.(.+)', r'backbone.\1'),
    (r'backbone\.fpn\.inner_blocks\.(\d)\.(?:0\.)?(weight|bias)',
     r'neck.lateral_convs.\1.conv.\2'),
    (r'backbone\.fpn\.layer_blocks\.(\d)\.(?:0\.)?(weight|bias)',
     r'neck.fpn_convs.\1.conv.\2'),
    (r'rpn\.head\.cls_logits\.(.+)', r'rpn_head.rpn_cls.\1'),
    (r'rpn\.head\.bbox_pred\.(.+)', r'rpn_head.rpn_reg.\1'),
    (r'roi_heads\.box_predictor\.cls_score\.(.+)',
     r'roi_head.bbox_head.fc_cls.\1'),
    (r'roi_heads\.box_predictor\.bbox_pred\.(.+)',
     r'roi_head.bbox_head.fc_reg.\1'),
]
_V1 = [
    (r'rpn\.head\.conv\.(?:0\.0\.)?(weight|bias)', r'rpn_head.rpn_conv.\1'),
    (r'roi_heads\.box_head\.fc6\.(.+)', r'roi_head.bbox_head.shared_fcs.0.\1'),
    (r'roi_heads\.box_head\.fc7\.(.+)', r'roi_head.bbox_head.shared_fcs.1.\1'),
]
_MASK = [
    (r'roi_heads\.mask_head\.(\d)\.0\.(weight|bias)',
     r'roi_head.mask_head.convs.\1.conv.\2'),
    (r'roi_heads\.mask_predictor\.conv5_mask\.(.+)',
     r'roi_head.mask_head.upsample.\1'),
    (r'roi_heads\.mask_predictor\.mask_fcn_logits\.(.+)',
     r'roi_head.mask_head.conv_logits.\1'),
]
# v2: FPN, RPN and box-head convs carry BatchNorm (index .1 -> .bn).
_V2 = [
    (r'backbone\.fpn\.inner_blocks\.(\d)\.0\.weight',
     r'neck.lateral_convs.\1.conv.weight'),
    (r'backbone\.fpn\.inner_blocks\.(\d)\.1\.(.+)',
     r'neck.lateral_convs.\1.bn.\2'),
    (r'backbone\.fpn\.layer_blocks\.(\d)\.0\.weight',
     r'neck.fpn_convs.\1.conv.weight'),
    (r'backbone\.fpn\.layer_blocks\.(\d)\.1\.(.+)',
     r'neck.fpn_convs.\1.bn.\2'),
    (r'rpn\.head\.conv\.(\d)\.0\.(weight|bias)',
     r'rpn_head.rpn_conv.\1.conv.\2'),
    (r'roi_heads\.box_head\.(\d)\.0\.weight',
     r'roi_head.bbox_head.shared_convs.\1.conv.weight'),
    (r'roi_heads\.box_head\.(\d)\.1\.(.+)',
     r'roi_head.bbox_head.shared_convs.\1.bn.\2'),
    (r'roi_heads\.box_head\.5\.(weight|bias)',
     r'roi_head.bbox_head.shared_fcs.0.\1'),
]


# MobileNetV3: the features Sequential sits in TorchvisionBackbone.tv.
_MOBILE = [(r'backbone\.body\.(\d+\..+)', r'backbone.tv.features.\1')]


def detect_torchvision_arch(state_dict: Dict[str, Tensor]) -> str:
    """Name the torchvision builder that made ``state_dict``.

    Args:
        state_dict (dict[str, Tensor]): torchvision detection state dict.

    Returns:
        str: A key of :data:`ARCHS`.

    Raises:
        ValueError: If it is none of them, listing the supported ones.
    """
    keys = set(state_dict)
    if 'backbone.body.16.0.weight' in keys and \
            'roi_heads.box_head.fc6.weight' in keys:
        return 'fasterrcnn_mobilenet_v3_large_fpn'
    if 'backbone.body.layer4.2.conv3.weight' not in keys or \
            'roi_heads.box_predictor.cls_score.weight' not in keys:
        raise ValueError(
            'not a torchvision Faster/Mask R-CNN state dict '
            '(no backbone.body.layer4.2.conv3.weight or '
            'roi_heads.box_predictor.cls_score.weight). Supported: '
            f'{", ".join(ARCHS)}')
    if 'backbone.fpn.inner_blocks.0.1.weight' in keys:
        return 'fasterrcnn_resnet50_fpn_v2'
    if 'roi_heads.mask_predictor.mask_fcn_logits.weight' in keys:
        return 'maskrcnn_resnet50_fpn'
    return 'fasterrcnn_resnet50_fpn'


def _rename(key: str, rules: List[Tuple[str, str]]) -> str:
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    raise ValueError(f'{key!r}: no mmdet name for this torchvision key; '
                     f'supported architectures: {", ".join(ARCHS)}')


def _class_rows(key: str, value: Tensor) -> Tensor:
    """Background first -> background last (cls) or dropped (reg, mask)."""
    if key.startswith('roi_head.bbox_head.fc_cls.'):
        return torch.cat([value[1:], value[:1]])
    if key.startswith('roi_head.bbox_head.fc_reg.'):
        return value[4:]
    if key.startswith('roi_head.mask_head.conv_logits.'):
        return value[1:]
    return value


def convert_torchvision_detector(
        state_dict: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], str, int]:
    """Rename a torchvision detector's state dict to mmdet names.

    Args:
        state_dict (dict[str, Tensor]): From e.g.
            ``torchvision.models.detection.fasterrcnn_resnet50_fpn()``.

    Returns:
        tuple[OrderedDict, str, int]: The mmdet state dict, the torchvision
        architecture name and the number of (foreground) classes.

    Raises:
        ValueError: For an unsupported architecture or an unknown key.
    """
    arch = detect_torchvision_arch(state_dict)
    rules = (_V2 if arch.endswith('_v2') else _V1) + _COMMON + _MASK
    if 'mobilenet' in arch:
        rules = _MOBILE + rules
    out = OrderedDict()
    for key, value in state_dict.items():
        new_key = _rename(key, rules)
        out[new_key] = _class_rows(new_key, value)
    for key in list(out):  # FrozenBatchNorm2d: add num_batches_tracked
        if key.endswith('.running_var'):
            tracked = key[:-len('running_var')] + 'num_batches_tracked'
            out.setdefault(tracked, torch.tensor(0, dtype=torch.long))
    num_classes = out['roi_head.bbox_head.fc_cls.weight'].shape[0] - 1
    return out, arch, num_classes


def torchvision_coco_categories() -> List[str]:
    """torchvision's 91 COCO category names (``'__background__'``, ``'N/A'``
    for unused ids), as its detection weights list them.

    Returns:
        list[str]: 91 names, background first.
    """
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    return list(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta['categories'])
