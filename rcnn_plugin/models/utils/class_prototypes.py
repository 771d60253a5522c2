"""Class prototypes: mean RoI embeddings of the GT boxes of each class.

Shapes: ``C`` classes, ``D`` the input width of ``fc_cls``, ``G`` GT boxes
of a batch.
"""
from typing import Iterable, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from torch import Tensor, nn


@torch.no_grad()
def class_prototypes(model: nn.Module, batches: Iterable[dict],
                     num_classes: int,
                     normalize: bool = True) -> Tuple[Tensor, Tensor]:
    """Average the ``fc_cls`` input over the GT boxes of each class.

    Each GT box is used as an RoI of a two-stage detector with a single
    ``roi_head.bbox_head``; its embedding is what ``fc_cls`` receives,
    captured with a forward hook, so any ``ConvFCBBoxHead`` layout works.
    With ``normalize`` each embedding is L2-normalised before averaging
    (the direction a cosine classifier compares).

    Args:
        model (nn.Module): An mmdet two-stage detector, in eval mode.
        batches (Iterable[dict]): Collated data batches (``inputs`` and
            ``data_samples`` with ``gt_instances``), as a dataloader yields.
        num_classes (int): ``C``; labels outside ``[0, C)`` are an error.
        normalize (bool): Normalise embeddings first. Defaults to True.

    Returns:
        tuple[Tensor, Tensor]: Prototypes ``(C, D)`` (zero rows for classes
        without boxes) and box counts ``(C,)``.

    Raises:
        ValueError: If a label is out of range.
    """
    if model.training:  # BN running statistics would change
        raise ValueError('class_prototypes needs the model in eval mode '
                         '(model.eval())')
    head = model.roi_head.bbox_head
    extractor = model.roi_head.bbox_roi_extractor
    captured = []
    hook = head.fc_cls.register_forward_hook(
        lambda mod, args, out: captured.append(args[0]))
    sums = counts = None
    try:
        for batch in batches:
            data = model.data_preprocessor(batch, False)
            gts = [s.gt_instances for s in data['data_samples']]
            labels = torch.cat([g.labels for g in gts]).long()
            if labels.numel() == 0:
                continue
            if labels.min() < 0 or labels.max() >= num_classes:
                raise ValueError(f'GT labels {labels.unique().tolist()} are '
                                 f'outside [0, {num_classes})')
            feats = model.extract_feat(data['inputs'])
            rois = bbox2roi([get_box_tensor(g.bboxes) for g in gts])
            captured.clear()
            head(extractor(feats[:extractor.num_inputs], rois))
            emb = captured[0].flatten(1)
            emb = F.normalize(emb, dim=1) if normalize else emb
            if sums is None:  # on the model's device (CUDA too)
                sums = emb.new_zeros(num_classes, emb.shape[1])
                counts = emb.new_zeros(num_classes)
            sums.index_add_(0, labels, emb)
            counts += torch.bincount(labels, minlength=num_classes).to(counts)
    finally:
        hook.remove()
    if sums is None:
        raise ValueError('no GT boxes in the batches: nothing to average')
    return sums / counts.clamp(min=1)[:, None], counts
