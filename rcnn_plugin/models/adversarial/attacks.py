"""FGSM and PGD attacks on a detector's training losses, in pixel space.

Zhang and Wang, "Towards Adversarially Robust Object Detection" (ICCV
2019), attack a detector through its classification loss (``A_cls``) and
its localisation loss (``A_loc``). Here an attack perturbs the images that
the dataloader yields, before the model's ``data_preprocessor``: the
perturbation lives in the 0-255 pixel space of the image (channel order as
loaded, BGR for mmdet's loaders), and normalisation, channel conversion and
padding happen inside the attack loop, so gradients flow through them.

Shapes: N images; ``inputs`` is a list of N tensors of shape (3, H_i, W_i)
with values in [0, 255] (uint8 or float), as ``pseudo_collate`` gives them.
The loss is computed against the ground truth of ``data_samples``
(``model(..., mode='loss')``), so the model must produce training losses:
it needs its ``train_cfg``, and the images need their ``gt_instances``.

The functions do not change the model's mode: call ``model.eval()`` (as
``tools/analysis/attack.py`` does) or :func:`frozen_norm_stats` (as
adversarial training does) so the attack does not update BN statistics.
"""
import contextlib
import copy
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

# The loss terms each target sums (mmdet's Faster / Mask R-CNN key names).
# A_cls and A_loc of Zhang and Wang: the RPN's and the RoI head's terms.
LOSS_TERMS: Dict[str, Tuple[str, ...]] = {
    'cls': ('loss_rpn_cls', 'loss_cls'),
    'loc': ('loss_rpn_bbox', 'loss_bbox'),
}
TargetType = Union[str, Sequence[str]]


class LossTermError(ValueError):
    """An attack names a loss term that the model does not produce."""


def resolve_loss_terms(target: TargetType) -> Optional[Tuple[str, ...]]:
    """The loss keys an attack target sums.

    Args:
        target (str | Sequence[str]): ``'cls'`` (``A_cls``: loss_rpn_cls +
            loss_cls), ``'loc'`` (``A_loc``: loss_rpn_bbox + loss_bbox),
            ``'sum'`` (every key containing ``'loss'``), or explicit keys.

    Returns:
        tuple[str] | None: The keys; None for ``'sum'`` (all loss terms).

    Raises:
        ValueError: For an unknown target name or an empty key list.
    """
    if isinstance(target, str):
        if target == 'sum':
            return None
        if target not in LOSS_TERMS:
            raise ValueError(f'unknown attack target {target!r}: use cls, '
                             'loc, sum or a list of loss keys')
        return LOSS_TERMS[target]
    terms = tuple(target)
    if not terms or not all(isinstance(t, str) for t in terms):
        raise ValueError('attack loss terms must be a non-empty list of '
                         f'loss keys, got {target!r}')
    return terms


def select_loss(losses: Dict[str, object], target: TargetType) -> Tensor:
    """Sum the loss terms an attack maximises.

    Args:
        losses (dict): ``model(..., mode='loss')``: key -> Tensor or list of
            Tensors (one per FPN level for the RPN).
        target (str | Sequence[str]): See :func:`resolve_loss_terms`.

    Returns:
        Tensor: A scalar.

    Raises:
        LossTermError: If a named term is not among the model's losses
            (the message names it and lists the model's loss keys).
    """
    available = [k for k in losses if 'loss' in k]
    terms = resolve_loss_terms(target)
    for key in terms or ():
        if key not in losses:
            raise LossTermError(
                f'attack loss term {key!r} is not produced by the model; its '
                f'loss keys are {available}')
    total = None
    for key in available if terms is None else terms:
        values = losses[key]
        for value in values if isinstance(values, (list, tuple)) else [
                values]:
            total = value.sum() if total is None else total + value.sum()
    if total is None:
        raise ValueError('the model produced no loss terms to attack')
    return total


@contextlib.contextmanager
def frozen_norm_stats(model: nn.Module) -> Iterator[nn.Module]:
    """Put every BN layer in eval mode for the block, then restore modes.

    Inside, BN layers normalise with their running statistics and do not
    update them, so an attack's forward passes leave the statistics as
    they were. Other layers keep their mode (the model stays in training
    mode, so the losses use the training configuration).

    Args:
        model (nn.Module): The model.

    Yields:
        nn.Module: ``model``.
    """
    changed = [m for m in model.modules()
               if isinstance(m, _NormBase) and m.training]
    for module in changed:
        module.eval()
    try:
        yield model
    finally:
        for module in changed:
            module.train()


def gt_to_input_scale(data_samples: Sequence) -> list:
    """Copies of data samples with their ground truth at the input's scale.

    mmdet's test pipelines load annotations after ``Resize``, so that
    evaluators compare predictions (rescaled to the original image) with
    ground truth in original pixels. The losses of an attack need the ground
    truth on the resized image the model sees: this multiplies the boxes
    (``x1, y1, x2, y2``, absolute pixels) by each sample's ``scale_factor``
    and resizes masks to its ``img_shape``; ``ignored_instances`` too.

    Args:
        data_samples (Sequence[DetDataSample]): Samples with
            ``gt_instances`` in original pixels.

    Returns:
        list[DetDataSample]: Deep copies; the inputs are left as they were.
    """
    out = []
    for sample in data_samples:
        sample = copy.deepcopy(sample)
        scale = sample.metainfo.get('scale_factor', (1.0, 1.0))
        parts = [sample.gt_instances]
        if 'ignored_instances' in sample:  # ignore_iof_thr reads them
            parts.append(sample.ignored_instances)
        for gt in parts:
            if 'bboxes' not in gt:
                continue
            if isinstance(gt.bboxes, Tensor):
                gt.bboxes = gt.bboxes * gt.bboxes.new_tensor(
                    scale).repeat(2)
            else:  # HorizontalBoxes
                gt.bboxes.rescale_(scale)
            if 'masks' in gt:
                gt.masks = gt.masks.resize(sample.metainfo['img_shape'][:2])
        out.append(sample)
    return out


def _as_float_list(inputs: Union[Tensor, Sequence[Tensor]]) -> List[Tensor]:
    if isinstance(inputs, Tensor):
        inputs = list(inputs.unbind(0))
    return [x.detach().float() for x in inputs]


def attack_losses(model: nn.Module, data: dict,
                  inputs: List[Tensor]) -> Dict[str, object]:
    """The model's training losses on ``data`` with other images.

    Args:
        model (nn.Module): A detector with a ``data_preprocessor``.
        data (dict): The collated batch (``inputs``, ``data_samples``).
        inputs (list[Tensor]): N (3, H_i, W_i) images in [0, 255].

    Returns:
        dict: ``model(..., mode='loss')``.

    The preprocessor runs with ``training=False``: no ``batch_augments``
    (e.g. a random batch resize), so the attack is crafted on the input
    size that ``test_step`` evaluates.
    """
    batch = model.data_preprocessor(dict(data, inputs=inputs), False)
    return model(**batch, mode='loss')


def uniform_start(images: List[Tensor], eps: float,
                 generator: Optional[torch.Generator] = None
                 ) -> List[Tensor]:
    """Uniform noise in [-eps, eps], cut so that images stay in [0, 255].

    Args:
        images (list[Tensor]): Clean images in [0, 255].
        eps (float): The L-inf radius in pixel units.
        generator (torch.Generator, optional): A CPU generator for the
            noise. Defaults to None (the global one).

    Returns:
        list[Tensor]: The perturbations, one per image.
    """
    deltas = []
    for x in images:
        noise = torch.rand(x.shape, generator=generator).to(x.device)
        delta = (noise * 2 - 1) * eps
        deltas.append((x + delta).clamp(0, 255) - x)
    return deltas


def _check(eps: float, step_size: float, steps: int) -> None:
    if not eps >= 0:
        raise ValueError(f'eps must be >= 0 (pixel units, 0-255), got {eps}')
    if not step_size > 0:
        raise ValueError(f'step_size must be > 0, got {step_size}')
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f'steps must be an integer >= 1, got {steps!r}')


def pgd_attack(model: nn.Module,
               data: dict,
               eps: float,
               step_size: float,
               steps: int,
               target: TargetType = 'sum',
               random_start: bool = False,
               generator: Optional[torch.Generator] = None) -> List[Tensor]:
    """Projected gradient ascent on a loss, in an L-inf ball of pixels.

    Each step adds ``step_size * sign(grad)``, then projects onto the ball
    ``|x_adv - x| <= eps`` and onto the image range [0, 255]. FGSM is one
    step of size ``eps`` without random start.

    Args:
        model (nn.Module): A detector that returns training losses.
        data (dict): A collated batch: ``inputs`` (N (3, H_i, W_i) images
            in [0, 255], channel order as loaded) and ``data_samples`` with
            ``gt_instances``; on the model's device or not.
        eps (float): The L-inf radius in pixel units (0-255). 0 returns
            the images unchanged.
        step_size (float): The step in pixel units.
        steps (int): The number of gradient steps (>= 1).
        target (str | Sequence[str]): The loss to maximise: ``'cls'``,
            ``'loc'``, ``'sum'`` or loss keys. Defaults to ``'sum'``.
        random_start (bool): Start from uniform noise in the ball.
            Defaults to False.
        generator (torch.Generator, optional): CPU generator for the random
            start. Defaults to None.

    Returns:
        list[Tensor]: N float images in [0, 255], detached, on the model's
        device.

    Raises:
        ValueError: For ``eps < 0``, ``step_size <= 0``, ``steps < 1`` or a
            loss term the model does not produce.
    """
    _check(eps, step_size, steps)
    data = model.data_preprocessor.cast_data(dict(data))
    images = _as_float_list(data['inputs'])
    resolve_loss_terms(target)
    if eps == 0:
        return images
    deltas = (uniform_start(images, eps, generator) if random_start else
              [torch.zeros_like(x) for x in images])
    for _ in range(steps):
        deltas = [d.detach().requires_grad_() for d in deltas]
        losses = attack_losses(model, data,
                               [x + d for x, d in zip(images, deltas)])
        grads = torch.autograd.grad(select_loss(losses, target), deltas,
                                    allow_unused=True)
        deltas = [project_linf(x, d.detach() + step_size * grad_sign(g), eps)
                  for x, d, g in zip(images, deltas, grads)]
    return [(x + d).detach() for x, d in zip(images, deltas)]


def fgsm_attack(model: nn.Module,
                data: dict,
                eps: float,
                target: TargetType = 'sum') -> List[Tensor]:
    """FGSM: one step of size ``eps`` along the sign of the gradient.

    Args:
        model (nn.Module): A detector that returns training losses.
        data (dict): A collated batch, see :func:`pgd_attack`.
        eps (float): The L-inf radius in pixel units (0-255).
        target (str | Sequence[str]): The loss to maximise. Defaults to
            ``'sum'``.

    Returns:
        list[Tensor]: N float images in [0, 255].
    """
    return pgd_attack(model, data, eps, step_size=max(eps, 1e-12), steps=1,
                      target=target)


def grad_sign(grad: Optional[Tensor]) -> Union[Tensor, float]:
    """``sign(grad)``, NaN as 0; 0 for None (a loss independent of the image).

    Args:
        grad (Tensor, optional): A gradient.

    Returns:
        Tensor | float: The sign.
    """
    return 0.0 if grad is None else torch.nan_to_num(grad).sign()


def project_linf(x: Tensor, delta: Tensor, eps: float) -> Tensor:
    """Cut ``delta`` to ``[-eps, eps]`` and ``x + delta`` to [0, 255].

    Args:
        x (Tensor): The clean image, (3, H, W), in [0, 255].
        delta (Tensor): The perturbation, same shape.
        eps (float): The L-inf radius in pixel units.

    Returns:
        Tensor: The projected perturbation.
    """
    return (x + delta.clamp(-eps, eps)).clamp(0, 255) - x
