"""Adversarial training steps: FGSM with random start, PGD and "free".

:class:`AdversarialTraining` holds the settings and runs one training step
on adversarial images; the train loops in
:mod:`rcnn_plugin.engine.runner.adversarial_loops` call it in place of
``model.train_step``, so it works with any mmdet detector, under DDP too
(mmengine's DDP wrapper does not call the module's own ``train_step``).
The model is left untouched, so checkpoints are plain detector checkpoints.

Methods (eps and step sizes in pixel units, 0-255):

- ``'fgsm-rs'`` (default): Wong, Rice and Kolter, "Fast is better than
  free" (ICLR 2020): uniform random start in the eps-ball, one signed
  gradient step of ``step_size`` (default 1.25 eps), then train on it.
- ``'pgd'``: Madry et al. (ICLR 2018): ``steps`` signed steps of
  ``step_size`` (default 2.5 eps / steps) from a random start.
- ``'free'``: Shafahi et al., "Adversarial training for free!" (NeurIPS
  2019): each batch is replayed ``replays`` times; every replay trains on
  the current perturbation and moves it by ``eps`` along the sign of the
  input gradient of that same backward pass. The perturbation starts at
  zero for each batch (images differ in size between batches). One loop
  iteration then makes ``replays`` optimizer steps: shorten the schedule.

BN statistics: the attack passes of ``'fgsm-rs'`` and ``'pgd'`` run with
every BN layer in eval mode (:func:`frozen_norm_stats`), so they neither
update the running statistics nor use batch statistics; the training pass
then runs as usual. ``'free'`` has no separate attack pass.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from .attacks import (
    frozen_norm_stats,
    grad_sign,
    pgd_attack,
    project_linf,
    resolve_loss_terms,
)

METHODS = ('fgsm-rs', 'pgd', 'free')


class AdversarialTraining:
    """Settings and the training step of adversarial fine-tuning.

    Args:
        method (str): ``'fgsm-rs'``, ``'pgd'`` or ``'free'`` (see the
            module docstring). Defaults to ``'fgsm-rs'``.
        eps (float): L-inf radius in pixel units (0-255). Defaults to 8.0
            (Zhang and Wang's budget).
        step_size (float, optional): Step in pixel units. Defaults to None:
            1.25 eps for ``'fgsm-rs'``, 2.5 eps / steps for ``'pgd'``, eps
            for ``'free'``.
        steps (int, optional): Attack steps of ``'pgd'`` (only).
            Defaults to None: 3.
        replays (int, optional): Replays of each batch for ``'free'``
            (only). Defaults to None: 4.
        target (str | Sequence[str]): Loss to attack: ``'cls'``, ``'loc'``,
            ``'sum'`` or loss keys; ``'free'`` takes only ``'sum'``.
            Defaults to ``'sum'``.
        clean_ratio (float): Probability that an image of a batch is
            trained on clean rather than adversarial. Defaults to 0.0.
    """

    def __init__(self,
                 method: str = 'fgsm-rs',
                 eps: float = 8.0,
                 step_size: Optional[float] = None,
                 steps: Optional[int] = None,
                 replays: Optional[int] = None,
                 target: Union[str, Sequence[str]] = 'sum',
                 clean_ratio: float = 0.0) -> None:
        if method not in METHODS:
            raise ValueError(f'adversarial method must be one of {METHODS}, '
                             f'got {method!r}')
        if not eps > 0:
            raise ValueError(f'adversarial eps must be > 0 (pixel units, '
                             f'0-255), got {eps}')
        for key, value, user in (('steps', steps, 'pgd'),
                                 ('replays', replays, 'free')):
            if value is not None and method != user:
                raise ValueError(f'adversarial {key} is for method '
                                 f"'{user}' only; method {method!r} does "
                                 'not use it')
        steps = 3 if steps is None else steps
        replays = 4 if replays is None else replays
        for key, value in (('steps', steps), ('replays', replays)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'adversarial {key} must be an integer >= '
                                 f'1, got {value!r}')
        if not 0.0 <= clean_ratio <= 1.0:
            raise ValueError('adversarial clean_ratio must be in [0, 1], got '
                             f'{clean_ratio}')
        default_step = {'fgsm-rs': 1.25 * eps, 'pgd': 2.5 * eps / steps,
                        'free': eps}[method]
        step_size = default_step if step_size is None else step_size
        if not step_size > 0:
            raise ValueError('adversarial step_size must be > 0, got '
                             f'{step_size}')
        resolve_loss_terms(target)
        if method == 'free' and target != 'sum':
            raise ValueError('adversarial method "free" perturbs along the '
                             'gradient of the training loss: it takes no '
                             f'target (got {target!r})')
        self.method, self.eps, self.step_size = method, float(eps), step_size
        self.steps = 1 if method == 'fgsm-rs' else steps
        self.replays, self.target = replays, target
        self.clean_ratio = clean_ratio

    def __repr__(self) -> str:
        return (f'AdversarialTraining(method={self.method!r}, eps={self.eps},'
                f' step_size={self.step_size}, steps={self.steps}, '
                f'replays={self.replays}, target={self.target!r}, '
                f'clean_ratio={self.clean_ratio})')

    def clean_mask(self, num: int) -> List[bool]:
        """Which images of a batch stay clean (global torch RNG).

        Args:
            num (int): The number of images N.

        Returns:
            list[bool]: N flags.
        """
        if self.clean_ratio <= 0:
            return [False] * num
        return (torch.rand(num) < self.clean_ratio).tolist()

    def train_step(self, model: nn.Module, data: dict,
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """One training step on adversarial images.

        Args:
            model (nn.Module): The detector, or its DDP wrapper.
            data (dict): The collated batch from the dataloader: ``inputs``
                (N images in [0, 255]) and ``data_samples``.
            optim_wrapper (OptimWrapper): The runner's optimizer wrapper.

        Returns:
            dict[str, Tensor]: The log variables of ``model.train_step``
            (of the last replay for ``'free'``).
        """
        module = model.module if is_model_wrapper(model) else model
        data = module.data_preprocessor.cast_data(dict(data))
        clean = self.clean_mask(len(data['inputs']))
        images = [x.detach().float() for x in data['inputs']]
        if self.method == 'free':
            return self._free_step(model, data, images, clean, optim_wrapper)
        if all(clean):
            adv = images
        else:
            with frozen_norm_stats(module), optim_wrapper.optim_context(
                    module):
                adv = pgd_attack(module, data, self.eps, self.step_size,
                                 self.steps, self.target, random_start=True)
        inputs = [x if c else a for x, a, c in zip(images, adv, clean)]
        return model.train_step(dict(data, inputs=inputs), optim_wrapper)

    def _free_step(self, model: nn.Module, data: dict, images: List[Tensor],
                   clean: List[bool],
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        deltas = [torch.zeros_like(x) for x in images]
        for _ in range(self.replays):
            deltas = [d.detach().requires_grad_(not c)
                      for d, c in zip(deltas, clean)]
            inputs = [x + d for x, d in zip(images, deltas)]
            log_vars = model.train_step(dict(data, inputs=inputs),
                                        optim_wrapper)
            deltas = [d.detach() if c else project_linf(
                x, d.detach() + self.step_size * grad_sign(d.grad), self.eps)
                for x, d, c in zip(images, deltas, clean)]
        return log_vars


def build_adversarial_training(
        cfg: Union[None, dict, AdversarialTraining]) -> AdversarialTraining:
    """An :class:`AdversarialTraining` from a config dict (or as it is).

    Args:
        cfg (dict | AdversarialTraining | None): Keyword arguments; None
            for the defaults.

    Returns:
        AdversarialTraining: The settings.
    """
    if isinstance(cfg, AdversarialTraining):
        return cfg
    return AdversarialTraining(**dict(cfg or {}))

