"""Tell the evaluator's metrics in which frame the ground truth is.

The rcnn_plugin metrics compare predictions, rescaled to the original
image, with the packed ``gt_instances``. A test pipeline that loads the
annotations before ``Resize`` packs them in the resized image, which a data
sample does not say; the dataset's pipeline order does.
"""
import logging

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from rcnn_plugin.evaluation.metrics.base_det_metric import BaseDetMetric

from .val_samples import gt_in_original_frame

__all__ = ['GroundTruthFrameHook', 'mark_ground_truth_frame']


@HOOKS.register_module()
class GroundTruthFrameHook(Hook):
    """Set ``gt_in_input_frame`` of the evaluator's :class:`BaseDetMetric`
    metrics from the pipeline order of the split they evaluate.

    At ``before_val`` / ``before_test`` the split's dataset pipeline is read
    as ``EvalFiguresHook`` reads it (``gt_in_original_frame``): where
    ``LoadAnnotations`` precedes every resize, the metrics divide the
    ground-truth and ignore boxes by each image's ``scale_factor`` (and a
    warning says so); otherwise they take them as they are. mmdet's own
    metrics are not changed (``CocoMetric`` reads the annotation file;
    ``VOCMetric`` would still read resized boxes).
    """

    priority = 'VERY_HIGH'

    def before_val(self, runner) -> None:
        """Mark the validation metrics.

        Args:
            runner (Runner): The runner.
        """
        mark_ground_truth_frame(runner.val_evaluator,
                                runner.val_dataloader.dataset)

    def before_test(self, runner) -> None:
        """Mark the test metrics.

        Args:
            runner (Runner): The runner.
        """
        mark_ground_truth_frame(runner.test_evaluator,
                                runner.test_dataloader.dataset)


def mark_ground_truth_frame(evaluator, dataset) -> None:
    """Set ``gt_in_input_frame`` of ``evaluator``'s :class:`BaseDetMetric`
    metrics from ``dataset``'s pipeline order (see
    :class:`GroundTruthFrameHook`, which ``ConfigDoctorHook`` is too).

    Args:
        evaluator (Evaluator): The split's evaluator.
        dataset (Dataset): The split's dataset.
    """
    resized = not gt_in_original_frame(dataset)
    metrics = [m for m in getattr(evaluator, 'metrics', [])
               if isinstance(m, BaseDetMetric)]
    newly = [m for m in metrics if resized and not m.gt_in_input_frame]
    for metric in metrics:
        metric.gt_in_input_frame = resized
    if newly:  # once, though two hooks may mark them
        names = ', '.join(type(m).__name__ for m in newly)
        print_log(
            'The pipeline loads annotations before '
            f'Resize, so {names} scale the ground truth back to the '
            'original image by scale_factor (mmdet test pipelines load '
            'them after Resize)', logger='current',
            level=logging.WARNING)
