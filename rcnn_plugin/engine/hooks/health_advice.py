"""The lr fix ``TrainingHealthHook`` gives for a diverging run."""
from typing import Optional

import torch
from mmengine.optim import OptimWrapperDict

from rcnn_plugin.config_doctor.data_checks import linear_scaling_reference

from .health_monitors import RCNN_REF, linear_lr_advice

__all__ = ['divergence_fix']


def divergence_fix(runner, ref: Optional[dict] = None,
                   max_norm: Optional[float] = None) -> str:
    """The ``Fix: ...`` sentence for a run that diverges.

    The lr is scaled linearly from ``ref``, else from the config's furthest
    base that sets lr and ``auto_scale_lr.base_batch_size``
    (:func:`linear_scaling_reference`), else (SGD) from mmdet's R-CNN
    schedules: lr 0.02 at batch 16.

    Args:
        runner (Runner): The training runner (its optimizer, config,
            world size and train dataloader).
        ref (dict, optional): ``name``, ``lr`` and ``base_batch_size`` of
            the reference. Defaults to None.
        max_norm (float, optional): clip_grad's ``max_norm`` (None: off).
            Defaults to None.

    Returns:
        str: The sentence of :func:`linear_lr_advice`.
    """
    ow = runner.optim_wrapper
    if isinstance(ow, OptimWrapperDict):
        ow = next(iter(ow.values()))
    group = ow.optimizer.param_groups[0]
    loader = runner.cfg.get('train_dataloader') or {}
    batch = loader.get('batch_size') or getattr(
        runner.train_dataloader, 'batch_size', None) or 1
    ref = ref or linear_scaling_reference(runner.cfg)
    if ref is None and isinstance(ow.optimizer, torch.optim.SGD):
        ref = RCNN_REF
    return linear_lr_advice(group.get('initial_lr', group['lr']),
                            runner.world_size, int(batch), ref, max_norm)
