"""D-RISE: detector saliency from random masks (Petsiuk et al., CVPR 2021).

Written here: no maintained package runs an mmdet detector (the reference
code and ``vision-explanation-methods`` wrap torchvision / their own
detector classes). Each of ``num_masks`` random low-resolution binary grids
is upsampled bilinearly with a random shift; the masked image (removed
pixels set to the mean colour, which normalises to 0) is detected, and its
detections are compared with each target detection. The similarity is
D-RISE's ``IoU x class similarity x objectness``: the objectness of a
two-stage detector is 1, and with mmdet's per-class scores (not the full
probability vector) the class similarity of a same-class detection is its
score, 0 for another class. The saliency of a target is the mask average
weighted by its best similarity, ``sum_i s_i M_i / (N p)`` (RISE's
normalisation).

Shapes: ``(1, 3, Hp, Wp)`` input; ``(h, w)`` valid region; T targets;
masks ``(n, h, w)`` in [0, 1]; saliency ``(T, h, w)``.
"""
import math
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .adapter import Detections

__all__ = ['drise', 'random_masks', 'similarity']


def random_masks(n: int, hw: Tuple[int, int], grid: int, p: float,
                 generator: torch.Generator) -> Tensor:
    """RISE masks: a ``grid x grid`` binary draw, upsampled and shifted.

    Args:
        n (int): Masks.
        hw (tuple): ``(h, w)`` of the masks.
        grid (int): Cells per side of the low-resolution grid.
        p (float): Probability that a cell is kept.
        generator (torch.Generator): Seeded generator.

    Returns:
        Tensor: ``(n, h, w)`` float masks in [0, 1].
    """
    h, w = hw
    ch, cw = math.ceil(h / grid), math.ceil(w / grid)
    cells = (torch.rand(n, 1, grid, grid, generator=generator) < p).float()
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw),
                       mode='bilinear', align_corners=False)[:, 0]
    dy = torch.randint(0, ch, (n,), generator=generator).tolist()
    dx = torch.randint(0, cw, (n,), generator=generator).tolist()
    return torch.stack([m[y:y + h, x:x + w] for m, y, x in zip(up, dy, dx)])


def similarity(dets: Detections, boxes: Tensor, labels: Tensor) -> Tensor:
    """Best ``IoU x score`` of a same-class detection, per target.

    Args:
        dets (dict): ``boxes`` ``(M, 4)``, ``scores``, ``labels`` of one
            masked image.
        boxes (Tensor): ``(T, 4)`` target boxes.
        labels (Tensor): ``(T,)`` target classes.

    Returns:
        Tensor: ``(T,)`` similarities in [0, 1].
    """
    from torchvision.ops import box_iou
    if len(dets['boxes']) == 0:
        return boxes.new_zeros(len(boxes))
    iou = box_iou(boxes.to(dets['boxes']), dets['boxes'])
    same = labels.to(dets['labels'])[:, None] == dets['labels'][None]
    sim = iou * dets['scores'][None] * same
    return sim.max(dim=1).values.to(boxes)


@torch.no_grad()
def drise(detect: Callable[[Tensor], List[Detections]], x: Tensor,
          hw: Tuple[int, int], boxes: Tensor, labels: Tensor,
          fill: Tensor, num_masks: int = 1000, grid: int = 16,
          p: float = 0.5, batch_size: int = 8, seed: int = 0) -> Tensor:
    """D-RISE saliency of each target detection.

    Args:
        detect (Callable): ``(B, 3, Hp, Wp)`` images -> detections per
            image (``boxes``, ``scores``, ``labels``), input frame.
        x (Tensor): ``(1, 3, Hp, Wp)`` the image.
        hw (tuple): ``(h, w)`` valid region (masks cover it only).
        boxes (Tensor): ``(T, 4)`` target boxes.
        labels (Tensor): ``(T,)`` target classes.
        fill (Tensor): ``(3, 1, 1)`` colour of removed pixels.
        num_masks (int): Mask budget, > 0. Defaults to 1000.
        grid (int): Cells per side of a mask. Defaults to 16.
        p (float): Probability that a cell is kept. Defaults to 0.5.
        batch_size (int): Masked images per forward pass. Defaults to 8.
        seed (int): Seed of the masks. Defaults to 0.

    Returns:
        Tensor: ``(T, h, w)`` float saliency (CPU), not normalised.
    """
    if num_masks <= 0:
        raise ValueError(f'D-RISE needs a mask budget > 0, got {num_masks}')
    if not 0 < p < 1 or grid < 1:
        raise ValueError(f'D-RISE needs 0 < p < 1 and grid >= 1, got '
                         f'p={p}, grid={grid}')
    h, w = hw
    gen = torch.Generator().manual_seed(seed)
    boxes, labels = boxes.detach().cpu(), labels.detach().cpu()
    sal = torch.zeros(len(boxes), h, w)
    fill = fill.to(x)
    for start in range(0, num_masks, batch_size):
        n = min(batch_size, num_masks - start)
        masks = random_masks(n, hw, grid, p, gen)
        batch = x.repeat(n, 1, 1, 1)
        m = masks[:, None].to(x)
        batch[:, :, :h, :w] = m * batch[:, :, :h, :w] + (1 - m) * fill
        sims = torch.stack([similarity(
            {k: v.detach().cpu() for k, v in d.items()}, boxes, labels)
            for d in detect(batch)])
        sal += torch.einsum('nt,nhw->thw', sims, masks)
    return sal / (num_masks * p)
