"""Domain classifiers of DA Faster R-CNN (Chen et al., CVPR 2018).

Shapes: N images, L feature levels, C channels, R RoIs. Domain 0 is the
source (labelled), 1 the target (unlabelled). Both classifiers sit behind
a gradient reversal layer, so minimising their loss trains them to tell
the domains apart and trains the detector to make the domains alike.
``forward(..., reverse=False)`` scales the gradient by ``+grl_weight``
instead (the consistency term's path in the reference code, krumo's
``GradientScalarLayer(+weight)``), so that term pulls the features towards
consistency rather than away from it.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from .grl import grad_reverse

__all__ = [
    'ImageDomainClassifier', 'InstanceDomainClassifier', 'domain_loss',
    'consistency_loss', 'neck_channels', 'check_weight'
]


def check_weight(key: str, weight: float,
                 why: str = 'would train the opposite of what the loss '
                 'is for') -> float:
    """``weight`` as a float, or an error naming ``key`` if it is not a
    number >= 0 (a negative one ``why``)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
            or not weight >= 0:
        raise ValueError(f'{key} must be a number >= 0, got {weight!r} (a '
                         f'negative weight {why})')
    return float(weight)


def _check_grl_weight(weight: float) -> float:
    return check_weight('grl_weight', weight, 'would undo the reversal')


def domain_loss(logits: Tensor, domain: int) -> Tensor:
    """Binary cross-entropy of domain logits against one domain label.

    Args:
        logits (Tensor): Logits of any shape; may be empty (no RoIs).
        domain (int): 0 (source) or 1 (target).

    Returns:
        Tensor: The mean loss; a zero still attached to the graph when
        ``logits`` is empty.
    """
    if domain not in (0, 1):
        raise ValueError(f'domain must be 0 or 1, got {domain!r}')
    if logits.numel() == 0:
        return logits.sum() * 0
    return F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, float(domain)))


def consistency_loss(img_probs: Tensor, ins_probs: Tensor,
                     ins_img: Tensor) -> Tensor:
    """L2 distance of each RoI's domain probability to its image's.

    Args:
        img_probs (Tensor): (N, ) mean image-level domain probability.
        ins_probs (Tensor): (R, ) instance-level domain probabilities.
        ins_img (Tensor): (R, ) image index of each RoI.

    Returns:
        Tensor: The mean squared difference (zero for R = 0).
    """
    if ins_probs.numel() == 0:
        return ins_probs.sum() * 0 + img_probs.sum() * 0
    return ((ins_probs - img_probs[ins_img.long()])**2).mean()


def neck_channels(neck, owner: str) -> int:
    """The neck's ``out_channels``: a domain classifier's default
    ``in_channels``; without a neck that names them, a sentence.

    Args:
        neck (dict, optional): The detector's neck config.
        owner (str): The config key to set instead, for the message.
    """
    if not isinstance(neck, dict) or 'out_channels' not in neck:
        raise ValueError('the detector has no neck with out_channels to '
                         'size the domain classifier: set '
                         f'{owner}.in_channels')
    return neck['out_channels']


@MODELS.register_module()
class ImageDomainClassifier(nn.Module):
    """Per-location domain classifier on each FPN level (shared weights).

    Args:
        in_channels (int): Channels C of the features.
        hidden_channels (int): Channels of the 1x1 hidden conv.
            Defaults to 256.
        grl_weight (float): Weight of the reversed gradient.
            Defaults to 0.1.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int = 256,
                 grl_weight: float = 0.1) -> None:
        super().__init__()
        if in_channels < 1 or hidden_channels < 1:
            raise ValueError('in_channels and hidden_channels must be '
                             f'positive, got {in_channels}, '
                             f'{hidden_channels}')
        self.grl_weight = _check_grl_weight(grl_weight)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, 1, 1))

    def forward(self, feats: Sequence[Tensor], reverse: bool = True) -> list:
        """Domain logits per level.

        Args:
            feats (Sequence[Tensor]): L tensors of shape (N, C, H_l, W_l).
            reverse (bool): Reverse the gradient (the adversarial loss);
                False scales it by ``+grl_weight`` (the consistency
                term). Defaults to True.

        Returns:
            list[Tensor]: L logit maps of shape (N, H_l, W_l).
        """
        w = self.grl_weight if reverse else -self.grl_weight
        return [self.net(grad_reverse(f, w)).squeeze(1) for f in feats]

    @staticmethod
    def image_probs(logits: Sequence[Tensor]) -> Tensor:
        """Mean domain probability of each image over levels and places.

        Args:
            logits (Sequence[Tensor]): The output of :meth:`forward`.

        Returns:
            Tensor: (N, ) probabilities.
        """
        return torch.stack([lg.sigmoid().flatten(1).mean(1) for lg in logits],
                           dim=1).mean(1)

    def loss(self, logits: Sequence[Tensor], domain: int) -> Tensor:
        """Mean over levels of the per-location domain loss.

        Args:
            logits (Sequence[Tensor]): The output of :meth:`forward`.
            domain (int): 0 (source) or 1 (target).

        Returns:
            Tensor: The loss.
        """
        return sum(domain_loss(lg, domain) for lg in logits) / len(logits)


@MODELS.register_module()
class InstanceDomainClassifier(nn.Module):
    """Domain classifier on RoI features.

    Args:
        in_channels (int): Channels C of the RoI features (the box head's
            FC output in DA Faster R-CNN).
        hidden_channels (int): Width of the hidden layers.
            Defaults to 256.
        dropout (float): Dropout between the layers. Defaults to 0.5.
        grl_weight (float): Weight of the reversed gradient.
            Defaults to 0.1.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int = 256,
                 dropout: float = 0.5,
                 grl_weight: float = 0.1) -> None:
        super().__init__()
        if in_channels < 1 or hidden_channels < 1:
            raise ValueError('in_channels and hidden_channels must be '
                             f'positive, got {in_channels}, '
                             f'{hidden_channels}')
        self.grl_weight = _check_grl_weight(grl_weight)
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden_channels, hidden_channels),
            nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden_channels, 1))

    def forward(self, roi_feats: Tensor, reverse: bool = True) -> Tensor:
        """Domain logit of each RoI.

        Args:
            roi_feats (Tensor): (R, C) RoI features (the box head's), or
                (R, C, h, w) RoI-pooled maps (averaged over h, w); R may
                be 0.
            reverse (bool): As in :meth:`ImageDomainClassifier.forward`.
                Defaults to True.

        Returns:
            Tensor: (R, ) logits.
        """
        x = roi_feats.flatten(2).mean(2) if roi_feats.dim() == 4 \
            else roi_feats
        w = self.grl_weight if reverse else -self.grl_weight
        return self.net(grad_reverse(x, w)).squeeze(1)

    def loss(self, logits: Tensor, domain: int) -> Tensor:
        """Domain loss of the RoIs (zero when there are none).

        Args:
            logits (Tensor): The output of :meth:`forward`.
            domain (int): 0 (source) or 1 (target).

        Returns:
            Tensor: The loss.
        """
        return domain_loss(logits, domain)
