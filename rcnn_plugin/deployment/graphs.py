"""Exportable pieces of a two-stage detector (what goes into the graphs).

Shapes: N images, L feature levels, R RoIs, C channels, K classes.
RoIs are ``(batch_index, x1, y1, x2, y2)`` in padded input pixels.

Graph ``features``: the data-preprocessor output ``(N, 3, H, W)`` to the
neck's L feature maps and the RPN head's L score and L delta maps; for a
detector without RPN (Fast R-CNN, proposals given with each image) the L
feature maps only.
Graph ``bbox``: the feature maps used by the box RoI extractor and the RoIs
to the box head's ``cls_score`` ``(R, K + 1)`` and ``bbox_pred``.
Graph ``mask`` (Mask R-CNN): the same for the mask head's ``mask_preds``.
Proposal decoding and NMS and the final box / mask post-processing stay in
Python (mmdet's own ``predict_by_feat``), as ONNX has no faithful export
of mmdet's batched NMS.
"""
from typing import List, Tuple

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

__all__ = ['BBoxGraph', 'ExportRoIExtractor', 'FeatureGraph', 'MaskGraph',
           'check_exportable']

# Module types with no ONNX path here, and the config option avoiding them.
_NO_EXPORT = {
    'DeformConv2d': 'a backbone without DCN (remove dcn=... / stage_with_dcn)',
    'ModulatedDeformConv2d': 'a backbone without DCN (remove dcn=...)',
    'ModulatedDeformConv2dPack': 'a backbone without DCN (remove dcn=...)',
    'DeformConv2dPack': 'a backbone without DCN (remove dcn=...)',
    'CARAFEPack': "neck upsample_cfg=dict(mode='nearest')",
    'RoIPool': "roi_layer=dict(type='RoIAlign', output_size=7, "
               'sampling_ratio=0)',
    'LoRAConv2d': 'tools/model_converters/merge_lora.py (merge adapters)',
    'LoRALinear': 'tools/model_converters/merge_lora.py (merge adapters)',
}


def check_exportable(model: nn.Module) -> None:
    """Refuse a model holding a module that has no ONNX export path here.

    Args:
        model (nn.Module): The detector.

    Raises:
        ValueError: Naming the module and the option that avoids it.
    """
    for name, module in model.named_modules():
        fix = _NO_EXPORT.get(type(module).__name__)
        if fix is not None:
            raise ValueError(
                f'{name} ({type(module).__name__}) has no ONNX export path; '
                f'use {fix}')
    roi_head = getattr(model, 'roi_head', None)
    if roi_head is None:
        raise ValueError(
            f'{type(model).__name__} has no roi_head: only two-stage '
            'detectors (Faster, Mask and Fast R-CNN) are exportable here')
    # the head graphs are one RoI extractor and one box head over FPN
    # levels: a C4 shared head or a cascade's stages are not traced
    if getattr(roi_head, 'with_shared_head', False):
        raise ValueError(
            f'{type(roi_head).__name__} has a shared head (a C4 config): '
            'the box graph has no path through it; export an FPN config')
    if isinstance(getattr(roi_head, 'bbox_roi_extractor', None),
                  nn.ModuleList):
        raise ValueError(
            f'{type(roi_head).__name__} has one box head per stage (a '
            'cascade): only single-stage RoI heads (Faster, Mask and Fast '
            'R-CNN) are exportable here')


class FeatureGraph(nn.Module):
    """Backbone, neck and RPN head: image to features and RPN maps.

    A detector without RPN (mmdet's ``FastRCNN``: proposals come with each
    image) gives the neck's features only.

    Args:
        detector (nn.Module): An mmdet two-stage detector.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        self.with_rpn = getattr(detector, 'rpn_head', None) is not None

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        """``(N, 3, H, W)`` to L features, L RPN scores, L RPN deltas
        (without RPN: the L features only)."""
        feats = self.detector.extract_feat(image)
        if not self.with_rpn:
            return tuple(feats)
        scores, deltas = self.detector.rpn_head(feats)
        return (*feats, *scores, *deltas)


class ExportRoIExtractor(nn.Module):
    """mmdet's multi-level RoI extraction with torchvision's ``roi_align``.

    Same level mapping (the extractor's own ``map_roi_levels``) and the
    same pooling as mmcv's ``RoIAlign``; exported as ONNX ``RoiAlign``
    with ``coordinate_transformation_mode='half_pixel'`` (opset >= 16)
    when ``aligned=True``.

    Args:
        extractor (nn.Module): A ``SingleRoIExtractor`` (or subclass).
    """

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        name = type(extractor).__name__
        if not hasattr(extractor, 'map_roi_levels'):
            raise ValueError(f'RoI extractor {name} has no ONNX export path; '
                             "use type='SingleRoIExtractor'")
        if getattr(extractor, 'roi_scale_factor', None) not in (None, 1.0):
            raise ValueError(f'{name}.roi_scale_factor has no ONNX export '
                             'path here; set roi_scale_factor=None')
        self.extractor = extractor
        self.params = []
        for layer in extractor.roi_layers:
            if getattr(layer, 'pool_mode', 'avg') != 'avg' or not hasattr(
                    layer, 'sampling_ratio'):
                raise ValueError(
                    f'{type(layer).__name__} (pool_mode '
                    f"{getattr(layer, 'pool_mode', None)}) has no ONNX "
                    "export path; use roi_layer=dict(type='RoIAlign', "
                    "pool_mode='avg')")
            self.params.append(
                (tuple(layer.output_size), float(layer.spatial_scale),
                 int(layer.sampling_ratio), bool(layer.aligned)))

    @property
    def num_inputs(self) -> int:
        """Number of feature levels L the extractor reads."""
        return len(self.params)

    def forward(self, feats: List[Tensor], rois: Tensor) -> Tensor:
        """L features and ``(R, 5)`` RoIs to ``(R, C, h, w)`` features."""
        levels = self.extractor.map_roi_levels(rois, len(feats))
        size = self.params[0][0]
        out = feats[0].new_zeros(rois.size(0), feats[0].size(1), *size)
        for i, (size, scale, ratio, aligned) in enumerate(self.params):
            inds = torch.nonzero(levels == i).squeeze(1)
            pooled = roi_align(feats[i], rois[inds], size, scale, ratio,
                               aligned)
            out = out.index_put((inds, ), pooled)
        return out


class BBoxGraph(nn.Module):
    """Box RoI extraction and box head: features and RoIs to box outputs.

    Args:
        roi_head (nn.Module): An mmdet ``StandardRoIHead``.
    """

    def __init__(self, roi_head: nn.Module) -> None:
        super().__init__()
        self.extractor = ExportRoIExtractor(roi_head.bbox_roi_extractor)
        self.head = roi_head.bbox_head

    def forward(self, *inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """L features then ``(R, 5)`` RoIs to ``cls_score``, ``bbox_pred``."""
        feats = self.extractor(list(inputs[:-1]), inputs[-1])
        return self.head(feats)


class MaskGraph(nn.Module):
    """Mask RoI extraction and mask head: features and RoIs to masks.

    Args:
        roi_head (nn.Module): An mmdet ``StandardRoIHead`` with a mask head.
    """

    def __init__(self, roi_head: nn.Module) -> None:
        super().__init__()
        if getattr(roi_head, 'share_roi_extractor', False):
            raise ValueError('share_roi_extractor=True has no ONNX export '
                             'path here; set share_roi_extractor=False')
        self.extractor = ExportRoIExtractor(roi_head.mask_roi_extractor)
        self.head = roi_head.mask_head

    def forward(self, *inputs: Tensor) -> Tensor:
        """L features then ``(R, 5)`` RoIs to ``(R, K, 2h, 2w)`` logits."""
        return self.head(self.extractor(list(inputs[:-1]), inputs[-1]))
