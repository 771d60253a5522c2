"""A two-stage mmdet detector as a function of a pixel tensor.

Saliency methods perturb or differentiate the image the network sees. This
adapter fixes that image once per input, in the *input frame*: the test
pipeline's resized image, BGR, float pixel values 0..255, padded to the
data preprocessor's size divisor with its mean colour (so the preprocessor
adds no padding and the padded pixels normalise to exactly 0, as in
``model.predict``).

Shapes: B images, ``(B, 3, Hp, Wp)`` padded input tensor; ``(h, w)`` the
valid (resized, unpadded) region; N detections with boxes ``(N, 4)`` as
``x1, y1, x2, y2`` pixels of the input frame unless said otherwise.
"""
import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from torch import Tensor, nn

from ..inputs import inference_pipeline

__all__ = ['DetectorAdapter', 'best_match', 'check_two_stage', 'frozen',
           'prepare_image']

Detections = Dict[str, Tensor]  # boxes (N, 4), scores (N,), labels (N,)


def _test_pipeline(cfg):
    """The config's test pipeline for loaded BGR images (rcnn_plugin's
    :func:`inference_pipeline`: annotation loading dropped, the file
    loader swapped for ``LoadImageFromNDArray`` with its options)."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    return inference_pipeline(
        Compose(copy.deepcopy(get_test_pipeline_cfg(cfg))))


def _pad_colour(preprocessor: nn.Module) -> Tensor:
    """``(3, 1, 1)`` BGR pixel colour that normalises to 0."""
    mean = getattr(preprocessor, 'mean', None)
    if mean is None or not getattr(preprocessor, '_enable_normalize', True):
        return torch.zeros(3, 1, 1)
    mean = mean.detach().float().reshape(3, 1, 1).cpu()
    return mean.flip(0) if preprocessor._channel_conversion else mean


def prepare_image(model: nn.Module, cfg, image: np.ndarray,
                  pipeline=None) -> Tuple[Tensor, dict]:
    """The input-frame tensor and metainfo of a BGR image.

    Args:
        model (nn.Module): A two-stage mmdet detector (its
            ``data_preprocessor`` gives the divisor and the mean).
        cfg (Config): The model's config (its test pipeline is used).
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        pipeline (Compose, optional): A test pipeline built before.
            Defaults to None (built from ``cfg``).

    Returns:
        tuple: ``(1, 3, Hp, Wp)`` float tensor on the model's device and the
        metainfo (``img_shape`` ``(h, w)``, ``ori_shape``,
        ``scale_factor`` ``(w_scale, h_scale)``...).
    """
    pipeline = pipeline or _test_pipeline(cfg)
    packed = pipeline(dict(img=image, img_id=0))
    x = packed['inputs'].float()
    prep = model.data_preprocessor
    div = int(getattr(prep, 'pad_size_divisor', 1) or 1)
    h, w = x.shape[-2:]
    hp, wp = -(-h // div) * div, -(-w // div) * div
    padded = _pad_colour(prep).expand(3, hp, wp).clone()
    padded[:, :h, :w] = x
    meta = dict(packed['data_samples'].metainfo)
    meta['img_shape'] = (h, w)
    device = next(model.parameters()).device
    return padded[None].to(device), meta


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Parameters without gradients and eval mode, restored afterwards.

    Saliency backpropagates to activations only, so a hook run during
    training leaves no gradient in the parameters for the next step.

    Args:
        model (nn.Module): The model.

    Returns:
        Iterator[None]: A context.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    for p, _ in flags:
        p.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


def check_two_stage(model: nn.Module) -> None:
    """Refuse a model that is not a two-stage mmdet detector.

    Raises:
        TypeError: Naming the model's class.
    """
    if not hasattr(model, 'roi_head') or not hasattr(model, 'extract_feat'):
        raise TypeError(f'saliency needs a two-stage mmdet detector '
                        f'(Faster / Mask R-CNN), got {type(model).__name__}')
    if not getattr(model, 'with_rpn', True):
        raise TypeError(f'saliency needs a detector with an RPN (Faster / '
                        f'Mask R-CNN); {type(model).__name__} takes '
                        'precomputed proposals (Fast R-CNN)')


class DetectorAdapter(nn.Module):
    """``forward(x)``: detections of each image of an input-frame batch.

    It runs what ``TwoStageDetector.predict`` runs (backbone, neck, RPN,
    RoI head with NMS) without rescaling, so boxes stay in the input frame
    and gradients flow from the scores and boxes to the features (the RPN
    proposals are detached by mmdet, the RoI branch is not).

    Args:
        model (nn.Module): A two-stage mmdet detector.
        meta (dict): Metainfo of the image (see :func:`prepare_image`).
    """

    def __init__(self, model: nn.Module, meta: dict) -> None:
        super().__init__()
        check_two_stage(model)
        self.model = model
        self.meta = dict(meta)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to do: the parameters are frozen (see :func:`frozen`).

        Args:
            set_to_none (bool): Unused. Defaults to True.
        """

    def forward(self, x: Tensor) -> List[Detections]:
        """Detect on ``(B, 3, Hp, Wp)`` BGR pixels (0..255).

        Args:
            x (Tensor): The batch, in the input frame of ``meta``.

        Returns:
            List[dict]: Per image ``boxes`` ``(N, 4)`` (input frame),
            ``scores`` ``(N,)``, ``labels`` ``(N,)``.
        """
        samples = [DetDataSample(metainfo=self.meta) for _ in range(len(x))]
        data = self.model.data_preprocessor(
            dict(inputs=list(x), data_samples=samples), False)
        inputs, samples = data['inputs'], data['data_samples']
        feats = self.model.extract_feat(inputs)
        proposals = self.model.rpn_head.predict(feats, samples,
                                                rescale=False)
        results = self.model.roi_head.predict(feats, proposals, samples,
                                              rescale=False)
        return [dict(boxes=r.bboxes, scores=r.scores, labels=r.labels)
                for r in results]

    @torch.no_grad()
    def detect(self, x: Tensor, batch_size: int = 8) -> List[Detections]:
        """``forward`` without gradients, in batches.

        Args:
            x (Tensor): ``(B, 3, Hp, Wp)`` images.
            batch_size (int): Images per forward pass. Defaults to 8.

        Returns:
            List[dict]: As :meth:`forward`, detached.
        """
        out = []
        for start in range(0, len(x), batch_size):
            out += self(x[start:start + batch_size])
        return out

    def to_original(self, boxes: Tensor) -> Tensor:
        """Input-frame boxes to the original image's pixels.

        Args:
            boxes (Tensor): ``(N, 4)`` boxes.

        Returns:
            Tensor: ``(N, 4)`` boxes divided by ``scale_factor``.
        """
        w, h = self.meta.get('scale_factor', (1.0, 1.0))[:2]
        return boxes / boxes.new_tensor([w, h, w, h])

    def to_input(self, boxes: Tensor) -> Tensor:
        """Original-image boxes to the input frame.

        Args:
            boxes (Tensor): ``(N, 4)`` boxes.

        Returns:
            Tensor: ``(N, 4)`` boxes times ``scale_factor``.
        """
        w, h = self.meta.get('scale_factor', (1.0, 1.0))[:2]
        return boxes * boxes.new_tensor([w, h, w, h])


def best_match(dets: Detections, box: Tensor, label: int,
               min_iou: float = 0.0) -> Optional[int]:
    """Index of the same-class detection overlapping ``box`` most.

    Args:
        dets (dict): ``boxes``, ``scores``, ``labels`` of one image.
        box (Tensor): ``(4,)`` target box.
        label (int): Target class.
        min_iou (float): Lowest IoU that counts as a match (a match needs
            IoU > 0 in any case). Defaults to 0.0.

    Returns:
        int, optional: The index, or None without a match.
    """
    from torchvision.ops import box_iou
    if len(dets['boxes']) == 0:
        return None
    iou = box_iou(box.reshape(1, 4).to(dets['boxes']),
                  dets['boxes'].detach())[0]
    iou = torch.where(dets['labels'] == label, iou, torch.zeros_like(iou))
    best = int(iou.argmax())
    return best if iou[best] > 0 and iou[best] >= min_iou else None
