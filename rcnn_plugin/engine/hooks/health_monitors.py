"""The statistics behind ``TrainingHealthHook``, free of the runner: each
piece can be fed numbers directly (a loss curve, ``acc`` records)."""
import math
from collections import deque
from functools import partial
from statistics import mean, median
from typing import List, Optional, Union

import torch

from .collapse import check_collapse, classifier_collapse, collapse_message

__all__ = [
    'BackgroundCounter', 'DivergenceMonitor', 'check_collapse',
    'classifier_collapse', 'collapse_message',
    'describe_nonfinite', 'grad_norm', 'img_paths', 'inspect_grads',
    'linear_lr_advice', 'scalar'
]

# mmdet's reference for R-CNNs: SGD lr 0.02 for a total batch of 16.
RCNN_REF = dict(name="mmdet's R-CNN schedules (SGD)", lr=0.02,
                base_batch_size=16)


def scalar(value) -> Optional[float]:
    """A logged value (tensor, int, float) as a float; None if it is not
    a single number."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def grad_norm(grads: List[torch.Tensor]) -> float:
    """Total L2 norm of ``grads`` (one norm per tensor, then combined).

    Args:
        grads (list[Tensor]): Gradients, not empty.

    Returns:
        float: The norm; inf or nan if a gradient is not finite.
    """
    try:
        norms = torch._foreach_norm(grads)
    except (AttributeError, RuntimeError):
        norms = [torch.linalg.vector_norm(g) for g in grads]
    device = grads[0].device
    return float(torch.linalg.vector_norm(
        torch.stack([n.float().to(device) for n in norms])))


def img_paths(data_batch: Optional[Union[dict, tuple, list]]) -> List[str]:
    """The ``img_path`` of each data sample of a batch, where known.

    Args:
        data_batch (dict | tuple | list, optional): A batch as the
            dataloader gives it (``inputs`` and ``data_samples``). The
            data samples of a multi-branch batch (mmdet's ``MultiBranch``,
            a dict of branch name to samples) are read branch by branch.

    Returns:
        list[str]: The paths, each once, in batch order (``path (branch)``
        for a multi-branch batch); empty if the batch has no data samples.
    """
    samples = (data_batch.get('data_samples')
               if isinstance(data_batch, dict) else None)
    if isinstance(samples, dict):
        named = [(s, f' ({branch})') for branch, group in samples.items()
                 for s in group or []]
    else:
        named = [(s, '') for s in samples or []]
    paths = []
    for sample, branch in named:
        meta = getattr(sample, 'metainfo', sample)
        if isinstance(meta, dict) and meta.get('img_path'):
            path = f'{meta["img_path"]}{branch}'
            if path not in paths:
                paths.append(path)
    return paths


class DivergenceMonitor:
    """Track a loss curve and the clipping of its gradients.

    After ``burn_in`` updates it compares the median loss of the last
    ``window`` iterations with the lowest such median seen so far, and
    counts how many of the last ``window`` steps were clipped.

    The defaults come from two runs of the demo (seed 0, batch 4, clip at
    35): at lr 0.01 it fires at iteration 34 (the loss reached 5-100 by
    iteration 60); at lr 0.005 the median rose at most 1.8x above its low
    (the loss dips, then rises as the RPN finds objects) and at most 2 of
    15 steps were clipped (a window of 10 and a ratio of 2 warned there).

    Args:
        loss_ratio (float): Median loss over its lowest value that counts
            as divergence. Defaults to 2.5.
        clip_fraction (float): Share of clipped steps in the window that
            counts as divergence. Defaults to 0.5.
        window (int): Iterations of the median and of the clipping share.
            Defaults to 15.
        burn_in (int): Updates before anything is judged. Defaults to 20.
    """

    def __init__(self, loss_ratio: float = 2.5, clip_fraction: float = 0.5,
                 window: int = 15, burn_in: int = 20) -> None:
        if loss_ratio <= 1 or not 0 < clip_fraction <= 1 or window < 1:
            raise ValueError('expected loss_ratio > 1, 0 < clip_fraction '
                             f'<= 1 and window >= 1, got {loss_ratio}, '
                             f'{clip_fraction}, {window}')
        self.loss_ratio = loss_ratio
        self.clip_fraction = clip_fraction
        self.window = window
        self.burn_in = burn_in
        self.losses, self.grads, self.clips = (deque(maxlen=window)
                                               for _ in range(3))
        self.best: dict = {}
        self.seen = 0

    HUB_KEY = 'training_health_divergence'

    def state_dict(self) -> dict:
        """The lowest median, the windows and the count (plain types, so
        the message hub saves them in every checkpoint)."""
        return dict(best=dict(self.best), seen=self.seen,
                    losses=list(self.losses), grads=list(self.grads),
                    clips=list(self.clips))

    def save_to(self, message_hub) -> None:
        """Keep the state in the message hub (saved with checkpoints)."""
        message_hub.update_info(self.HUB_KEY, self.state_dict())

    @classmethod
    def from_hub(cls, runner, *args) -> 'DivergenceMonitor':
        """A monitor with the state of the resumed checkpoint, if any (a
        fresh one would take the loss at the resume as its lowest level, and
        miss a rise that had begun)."""
        monitor = cls(*args)
        state = runner.message_hub.get_info(cls.HUB_KEY) if runner.iter \
            else None
        if state:
            monitor.best, monitor.seen = dict(state['best']), state['seen']
            for name in ('losses', 'grads', 'clips'):
                getattr(monitor, name).extend(state[name])
        return monitor

    def update(self, iteration: int, loss: Optional[float],
               grad: Optional[float] = None,
               clipped: Optional[bool] = None) -> Optional[dict]:
        """Add one iteration; return the numbers if it diverges now.

        Args:
            iteration (int): The iteration (1-based), for the report.
            loss (float, optional): The total loss (None: not logged).
            grad (float, optional): The gradient norm before clipping.
                Defaults to None.
            clipped (bool, optional): Whether the step was clipped (None:
                clip_grad is off). Defaults to None.

        Returns:
            dict, optional: ``loss``, ``early_loss``, ``early_iteration``,
            ``ratio``, ``clipped`` (steps), ``steps``, ``clip_fraction``,
            ``grad_norm`` and ``early_grad_norm``; None while healthy.
        """
        self.seen += 1
        for queue, value in ((self.losses, loss), (self.grads, grad),
                             (self.clips, clipped)):
            if value is not None:
                queue.append(float(value))
        if self.seen < self.burn_in:
            return None
        ratio = fraction = 0.0
        if len(self.losses) == self.window:
            now = median(self.losses)
            if not self.best or now < self.best['early_loss']:
                self.best = dict(early_loss=now, early_iteration=iteration,
                                 early_grad_norm=median(self.grads or [0]))
            ratio = now / max(self.best['early_loss'], 1e-12)
        if len(self.clips) == self.window:
            fraction = mean(self.clips)
        if ratio <= self.loss_ratio and fraction <= self.clip_fraction:
            return None
        return dict(self.best, loss=median(self.losses), ratio=ratio,
                    clipped=int(sum(self.clips)), steps=len(self.clips),
                    clip_fraction=fraction,
                    grad_norm=median(self.grads) if self.grads else None)

    def describe(self, stats: dict, max_norm: Optional[float]) -> str:
        """One paragraph with the numbers of :meth:`update`.

        Args:
            stats (dict): What :meth:`update` returned.
            max_norm (float, optional): clip_grad's ``max_norm``.

        Returns:
            str: The description.
        """
        text = ''
        if 'early_loss' in stats:
            text += (f' the loss (median of the last {self.window} '
                     f'iterations) is {stats["loss"]:.3g}, '
                     f'{stats["ratio"]:.1f}x its lowest level '
                     f'{stats["early_loss"]:.3g} (iteration '
                     f'{stats["early_iteration"]});')
        if stats['steps']:
            text += (f' the gradient norm was above clip_grad max_norm '
                     f'{max_norm:g} on {stats["clipped"]} of the last '
                     f'{stats["steps"]} steps ({stats["clip_fraction"]:.0%})'
                     ';')
        if stats['grad_norm'] is not None:
            text += (f' gradient norm {stats["grad_norm"]:.3g} (median), '
                     f'{stats.get("early_grad_norm", 0):.3g} at the lowest '
                     'loss.')
        return text


def linear_lr_advice(lr: float, world_size: int, batch_size: int,
                     ref: Optional[dict],
                     max_norm: Optional[float] = None) -> str:
    """The fix for a diverging run: the linearly scaled lr and more.

    Args:
        lr (float): The lr of the run (after ``auto_scale_lr``, before
            warm-up).
        world_size (int): Number of processes.
        batch_size (int): ``train_dataloader.batch_size`` (per process).
        ref (dict, optional): ``name``, ``lr`` and ``base_batch_size`` of
            the reference the lr should scale from (None: unknown).
        max_norm (float, optional): clip_grad's ``max_norm`` (None: off).
            Defaults to None.

    Returns:
        str: A ``Fix: ...`` sentence.
    """
    clip = (f'lower clip_grad max_norm (now {max_norm:g}, e.g. '
            f'{max_norm / 3:.3g})' if max_norm else
            'set clip_grad=dict(max_norm=35, norm_type=2)')
    tail = (f'{clip}, or warm up longer (a LinearLR param_scheduler over '
            'more iterations).')
    if ref is None:
        return f'Fix: lower the lr (now {lr:g}), {tail}'
    real = world_size * batch_size
    scaled = ref['lr'] * real / ref['base_batch_size']
    how = (f'the linear scaling rule: {ref["lr"]:g} x {real} / '
           f'{ref["base_batch_size"]} from {ref["name"]}; real batch {real} '
           f'= world size {world_size} x batch {batch_size}')
    if lr > scaled * 1.05:
        return (f'Fix: set optim_wrapper.optimizer.lr={scaled:g} (now '
                f'{lr:g}, {lr / scaled:.1f}x {how}), {tail}')
    return (f'Fix: the lr {lr:g} is not above {scaled:g} ({how}); lower it '
            f'further (e.g. {lr / 2:g}), {tail}')


def describe_nonfinite(iteration: int, terms: dict, bad_terms: List[str],
                       bad_params: List[str], paths: List[str]) -> str:
    """Name the non-finite loss terms and gradients of one iteration.

    Args:
        iteration (int): The iteration (1-based).
        terms (dict): The logged terms, as floats.
        bad_terms (list[str]): Names of the non-finite loss terms.
        bad_params (list[str]): Names of parameters with a non-finite
            gradient.
        paths (list[str]): Image paths of the batch.

    Returns:
        str: Two lines: what was not finite, and the images.
    """
    parts = [f'{k} = {terms[k]}' for k in bad_terms if k != 'loss']
    if 'loss' in bad_terms:
        parts.append(f'(total loss = {terms["loss"]})')
    if bad_params:
        more = ', ...' if len(bad_params) > 5 else ''
        parts.append(f'non-finite gradients in {len(bad_params)} parameters '
                     f'({", ".join(bad_params[:5])}{more})')
    return (f'non-finite values at iteration {iteration}: '
            f'{"; ".join(parts)}.\nImages of the batch: '
            f'{", ".join(paths) or "unknown"}.')


class BackgroundCounter:
    """Count background labels among the RoIs sampled for the bbox heads.

    Wraps ``get_targets`` of each module that looks like an mmdet bbox head
    (an int ``num_classes``, ``bbox_coder``, ``reg_class_agnostic``,
    ``loss_and_target`` and ``get_targets``; mask heads have no
    ``bbox_coder``) on the instance; the label ``num_classes`` is
    background.
    """

    def __init__(self) -> None:
        self.heads: list = []
        self.reset()

    def attach(self, model: torch.nn.Module) -> int:
        """Wrap the bbox heads of ``model``.

        Args:
            model (nn.Module): The detector (not a DDP wrapper).

        Returns:
            int: Number of heads wrapped.
        """
        for module in model.modules():
            if isinstance(getattr(module, 'num_classes', None), int) and \
                    all(hasattr(module, a) for a in (
                        'bbox_coder', 'reg_class_agnostic',
                        'loss_and_target', 'get_targets')):
                module.get_targets = partial(self._count, module,
                                             module.get_targets)
                self.heads.append(module)
        return len(self.heads)

    def detach(self) -> None:
        """Give the heads their class's ``get_targets`` back."""
        for head in self.heads:
            del head.get_targets
        self.heads = []

    def reset(self) -> None:
        """Forget the counts (at each iteration)."""
        self.background, self.total = 0, 0

    def share(self) -> Optional[float]:
        """Share of background RoIs since :meth:`reset`, None if none.

        Returns:
            float, optional: In [0, 1].
        """
        return float(self.background) / self.total if self.total else None

    def _count(self, head, get_targets, *args, **kwargs):
        targets = get_targets(*args, **kwargs)
        labels = targets[0] if isinstance(targets, tuple) else None
        if isinstance(labels, (list, tuple)) and labels:
            labels = torch.cat(labels)
        if isinstance(labels, torch.Tensor) and not labels.is_floating_point():
            self.background += (labels == head.num_classes).sum()
            self.total += labels.numel()
        return targets


def inspect_grads(optimizer: torch.optim.Optimizer, names: dict,
                  wrapper: Optional[object] = None) -> Optional[dict]:
    """Look at the gradients an optimizer is about to apply.

    Args:
        optimizer (Optimizer): The torch optimizer (in its step pre-hook).
        names (dict): Parameter name by ``id(parameter)``.
        wrapper (OptimWrapper, optional): Its mmengine wrapper; with
            ``clip_grad=dict(max_norm=...)`` the norm before clipping is
            read from the wrapper's message hub. Defaults to None.

    Returns:
        dict, optional: ``params`` (those with a grad), ``bad`` (names of
        those with a non-finite grad), ``norm`` and, when clipping by
        norm, ``max_norm`` and ``clipped``; None if no grad is set.
    """
    params = [p for g in optimizer.param_groups for p in g['params']
              if p.grad is not None]
    if not params:
        return None
    norm = grad_norm([p.grad for p in params])
    bad = [] if math.isfinite(norm) else [
        names.get(id(p), '?') for p in params
        if not torch.isfinite(p.grad).all()]
    info = dict(params=params, bad=bad, norm=norm)
    max_norm = (getattr(wrapper, 'clip_grad_kwargs', None) or {}).get(
        'max_norm')
    if getattr(wrapper, 'grad_name', '') == 'grad_norm' and max_norm:
        # clip_grad has just put the norm before clipping into the hub.
        hub = wrapper.message_hub.log_scalars.get('train/grad_norm')
        norm = float(hub.current()) if hub is not None else norm
        info.update(norm=norm, max_norm=float(max_norm),
                    clipped=norm > max_norm)
    return info

