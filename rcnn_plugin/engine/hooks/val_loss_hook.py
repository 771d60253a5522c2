"""The training loss terms, measured on the validation set.

Shapes: N images per batch; features are the backbone / neck outputs of
the detector's ``extract_feat`` (a tuple of ``(N, C, H_l, W_l)``).
"""
import contextlib
import logging
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast

from .val_samples import gt_in_original_frame, to_input_frame

__all__ = ['ValLossHook']


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


@contextlib.contextmanager
def _forked_rng():
    """Draws inside leave torch's CPU (and current CUDA) RNG as they were."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() \
        else []
    with torch.random.fork_rng(devices=devices):
        yield


def _loss_from_features(model: torch.nn.Module, inputs: torch.Tensor,
                        feats: tuple, samples: list) -> dict:
    # model.loss() unchanged, with extract_feat answering from the features
    # the prediction computed (an instance attribute, removed after).
    model.extract_feat = lambda batch_inputs: feats
    try:
        return model.loss(inputs, samples)
    finally:
        del model.extract_feat


@HOOKS.register_module()
class ValLossHook(Hook):
    """Log the loss terms of the validation set at every evaluation.

    After each validation iteration (predictions made and evaluated), runs
    ``model.loss`` on the same batch: the model stays in eval mode
    (BatchNorm uses its running statistics; our models have no dropout),
    under ``torch.no_grad`` (and the val loop's autocast, if ``fp16``),
    with the data preprocessor's ``training=False`` (no batch
    augmentation) and the ground truth moved to the input frame
    (:func:`to_input_frame`: mmdet's test pipelines load it after
    ``Resize``). With ``reuse_features`` the backbone and neck
    features of the prediction are reused (for detectors using
    ``TwoStageDetector.extract_feat``), so the loss costs the heads only;
    otherwise, or when the prediction did not run ``extract_feat`` exactly
    once, the batch is preprocessed and run again.

    The terms (``loss``, ``loss_*``, ``acc``, as in the training log) are
    averaged over the images and, at the end of the evaluation,

    - written to the message hub as ``val/<term>`` scalars holding this
      evaluation's value only (the logger prints the mean of a window of
      ``loss`` scalars), so the ``Epoch(val)`` log line and the visualizer
      backends show them;
    - added to the evaluation's ``metrics`` as ``val/<term>``, as mmengine's
      own ``ValLoop`` adds a model's val losses: ``save_best='val/loss'``,
      ``EarlyStoppingHook(monitor='val/loss')``, :class:`EpochResultsHook`
      and :class:`RunSummaryHook` see them.

    The value is a stochastic estimate: the RPN and RoI samplers draw
    random anchors and proposals, so two evaluations of the same weights
    differ slightly (averaging over the images keeps it small). The draws
    come from a fork of torch's RNG: the training's random stream is the
    same with and without this hook.

    Samples without ``gt_instances`` (a val pipeline without
    ``LoadAnnotations``), without masks for a mask head, or with the ground
    truth in the original frame but no ``scale_factor``: a warning, once,
    saying why; no val loss. Under ``log_processor`` defaults
    (``log_with_hierarchy=False``) the visualizer backends receive
    ``loss_cls`` for both stages (at iteration steps in training, epoch
    steps in validation); ``log_processor=dict(log_with_hierarchy=True)``
    names them ``train/loss_cls`` and ``val/loss_cls``.

    Args:
        reuse_features (bool): Reuse the prediction's features.
            Defaults to True.
    """

    priority = 'ABOVE_NORMAL'  # after RuntimeInfoHook, before the logger,
    # CheckpointHook (save_best) and EarlyStoppingHook

    def __init__(self, reuse_features: bool = True) -> None:
        self.reuse_features = reuse_features
        self._sums: Dict[str, float] = {}
        self._count = 0
        self._warned = False
        self._handles: list = []
        self._captured: List[list] = []
        self._original = True
        self._fp16 = False

    def before_val(self, runner) -> None:
        """Reset the sums; hook the backbone and neck for their features.

        Args:
            runner (Runner): The runner.
        """
        self._sums, self._count = {}, 0
        self._original = gt_in_original_frame(runner.val_dataloader.dataset)
        # The features of a ValLoop(fp16=True) are half: same autocast.
        self._fp16 = bool(getattr(getattr(runner, 'val_loop', None), 'fp16',
                                  False))
        model = _unwrap(runner.model)
        if self.reuse_features and getattr(
                type(model), 'extract_feat', None) is \
                TwoStageDetector.extract_feat:
            last = model.neck if model.with_neck else model.backbone
            self._handles = [
                model.backbone.register_forward_pre_hook(self._grab_input),
                last.register_forward_hook(self._grab_output)]

    def _grab_input(self, module, args) -> None:
        self._captured.append([args[0], None])

    def _grab_output(self, module, args, output) -> None:
        if self._captured:
            self._captured[-1][1] = output

    def after_val(self, runner) -> None:
        """Remove the feature hooks.

        Args:
            runner (Runner): The runner.
        """
        for handle in self._handles:
            handle.remove()
        self._handles, self._captured = [], []

    def before_val_iter(self, runner, batch_idx: int,
                        data_batch: Optional[dict] = None) -> None:
        """Forget the previous batch's features.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch. Defaults to None.
        """
        self._captured = []

    def after_val_iter(self, runner, batch_idx: int,
                       data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Add this batch's loss terms to the sums.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch. Defaults to None.
            outputs (Sequence, optional): Its data samples with
                predictions. Defaults to None.
        """
        samples = list(outputs or [])
        terms = self.batch_loss(runner.model, data_batch, samples) \
            if samples else None
        self._captured = []
        if terms is None:
            return
        for key, value in terms.items():
            self._sums[key] = self._sums.get(key, 0.0) + value * len(samples)
        self._count += len(samples)

    def batch_loss(self, model: torch.nn.Module, data_batch: Optional[dict],
                   samples: Sequence) -> Optional[Dict[str, float]]:
        """The loss terms of one validation batch, or None (warned once).

        Args:
            model (nn.Module): The detector or its wrapper, in eval mode.
            data_batch (dict, optional): The batch from the dataloader.
            samples (Sequence): The batch's data samples after prediction
                (they carry the preprocessor's metainfo).

        Returns:
            dict[str, float], optional: ``loss``, ``loss_*``, ``acc``, ...
        """
        model = _unwrap(model)
        reason = self._unusable(model, samples)
        if reason is not None:
            self._warn_once(reason)
            return None
        light = [to_input_frame(s, self._original) for s in samples]
        with torch.no_grad(), _forked_rng(), autocast(enabled=self._fp16):
            if len(self._captured) == 1 and self._captured[0][1] is not None:
                losses = _loss_from_features(model, *self._captured[0],
                                             light)
            else:
                data = model.data_preprocessor(
                    dict(inputs=data_batch['inputs'], data_samples=light),
                    False)
                losses = model.loss(data['inputs'], data['data_samples'])
            _, log_vars = model.parse_losses(losses)
        return {key: float(value) for key, value in log_vars.items()}

    def _unusable(self, model, samples: Sequence) -> Optional[str]:
        gt = [s.get('gt_instances') for s in samples]
        if any(g is None or 'bboxes' not in g for g in gt):
            return ('the validation samples carry no gt_instances: the val '
                    "pipeline loads no annotations (add dict(type='Load"
                    "Annotations', with_bbox=True) after Resize)")
        if getattr(model, 'with_mask', False) and any(
                'masks' not in g for g in gt):
            return ('the model has a mask head but the validation samples '
                    'carry no gt masks (LoadAnnotations(with_mask=True) in '
                    'the val pipeline)')
        meta = samples[0].metainfo
        if self._original and 'scale_factor' not in meta and tuple(
                meta.get('img_shape', ())) != tuple(meta.get('ori_shape', ())):
            return ('the images are resized but their metainfo has no '
                    "scale_factor (add 'scale_factor' to PackDetInputs' "
                    'meta_keys)')
        return None

    def _warn_once(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            print_log(f'ValLossHook: no validation loss: {reason}.',
                      logger='current', level=logging.WARNING)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Publish the image-weighted means as ``val/<term>``.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): This evaluation's metrics; the
                terms are added to it. Defaults to None.
        """
        sums, count = self._sums, self._count
        if get_world_size() > 1:
            sums, count = {}, 0
            for part_sums, part_count in all_gather_object(
                    (self._sums, self._count)):
                for key, value in part_sums.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += part_count
        if not count:
            return
        hub = runner.message_hub
        # An evaluation that gave nothing (CocoMetric without a single
        # detection) stays empty: mmengine's CheckpointHook and early
        # stopping skip an empty one, but would take val/loss for the
        # metric ('auto') or fail on the missing key.
        add = metrics is not None and bool(metrics)
        if metrics is not None and not metrics:
            print_log(f'ValLossHook: the evaluation at epoch {runner.epoch}'
                      f', iteration {runner.iter} gave no metrics; the '
                      'validation losses are logged but not added to them',
                      logger='current', level=logging.WARNING)
        for term, total in sums.items():
            key, value = f'val/{term}', total / count
            hub.log_scalars.pop(key, None)  # one value: this evaluation's
            hub.update_scalar(key, value)
            if add:
                metrics[key] = value
