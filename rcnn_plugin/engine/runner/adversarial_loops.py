"""Train loops that train on adversarial images (adversarial fine-tuning).

A config switches adversarial training on by the type of its train loop,
so any mmdet detector config can use it and the model stays the plain
detector (its checkpoints load into the config without the switch)::

    train_cfg = dict(
        type='AdversarialEpochBasedTrainLoop',  # merged over the base loop
        adversarial=dict(method='fgsm-rs', eps=8.0, clean_ratio=0.5))

``configs/_base_/robustness/adversarial-training.py`` is this snippet as an
overlay (``--overlay``). Iteration-based configs use
``AdversarialIterBasedTrainLoop``. The settings are those of
:class:`~rcnn_plugin.models.adversarial.AdversarialTraining`.
"""
from typing import Optional, Sequence, Union

from mmdet.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from rcnn_plugin.models.adversarial import (
    AdversarialTraining,
    build_adversarial_training,
)

AdversarialCfg = Union[None, dict, AdversarialTraining]


def _check_length(kind: str, length: Optional[int], kwargs: dict) -> None:
    """A sentence for a loop of the other kind's config (the overlay merged
    onto it): ``kind`` is ``'Epoch'`` or ``'Iter'``."""
    if length is not None:
        return
    key, other = (('max_epochs', 'Iter') if kind == 'Epoch' else
                  ('max_iters', 'Epoch'))
    other_key = 'max_iters' if kind == 'Epoch' else 'max_epochs'
    counts = 'iterations' if kind == 'Epoch' else 'epochs'
    raise ValueError(
        f'Adversarial{kind}BasedTrainLoop needs train_cfg.{key}'
        + (f'; this config counts {counts} ({other_key}): set '
           f"train_cfg.type='Adversarial{other}BasedTrainLoop'"
           if other_key in kwargs else ''))


@LOOPS.register_module()
class AdversarialEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` whose iterations train on adversarial images.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training dataloader.
        max_epochs (int): Total training epochs.
        adversarial (dict, optional): Keyword arguments of
            :class:`~rcnn_plugin.models.adversarial.AdversarialTraining`.
            Defaults to None (its defaults: FGSM-RS, eps 8).
        **kwargs: Other arguments of ``EpochBasedTrainLoop``.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_epochs: Optional[int] = None,
                 adversarial: AdversarialCfg = None,
                 **kwargs) -> None:
        _check_length('Epoch', max_epochs, kwargs)
        self.adversarial = build_adversarial_training(adversarial)
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        runner.logger.info(f'adversarial training: {self.adversarial}')

    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """Iterate one mini-batch, as the parent with an adversarial step.

        Args:
            idx (int): The index of the batch in the epoch.
            data_batch (Sequence[dict]): A batch from the dataloader.
        """
        self.runner.call_hook(
            'before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.adversarial.train_step(
            self.runner.model, data_batch, self.runner.optim_wrapper)
        self.runner.call_hook(
            'after_train_iter', batch_idx=idx, data_batch=data_batch,
            outputs=outputs)
        self._iter += 1


@LOOPS.register_module()
class AdversarialIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose iterations train on adversarial images.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training dataloader.
        max_iters (int): Total training iterations.
        adversarial (dict, optional): Keyword arguments of
            :class:`~rcnn_plugin.models.adversarial.AdversarialTraining`.
            Defaults to None.
        **kwargs: Other arguments of ``IterBasedTrainLoop``.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_iters: Optional[int] = None,
                 adversarial: AdversarialCfg = None,
                 **kwargs) -> None:
        _check_length('Iter', max_iters, kwargs)
        self.adversarial = build_adversarial_training(adversarial)
        super().__init__(runner, dataloader, max_iters, **kwargs)
        runner.logger.info(f'adversarial training: {self.adversarial}')

    def run_iter(self, data_batch: Sequence[dict]) -> None:
        """Iterate one mini-batch, as the parent with an adversarial step.

        Args:
            data_batch (Sequence[dict]): A batch from the dataloader.
        """
        self.runner.call_hook(
            'before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        outputs = self.adversarial.train_step(
            self.runner.model, data_batch, self.runner.optim_wrapper)
        self.runner.call_hook(
            'after_train_iter', batch_idx=self._iter, data_batch=data_batch,
            outputs=outputs)
        self._iter += 1


