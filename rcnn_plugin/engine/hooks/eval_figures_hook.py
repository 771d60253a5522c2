"""Confusion matrix, PR and F1 curves, per-class AP of each evaluation.

Shapes: C classes; 101 score thresholds on the F1 curve.
"""
import logging
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmdet.registry import HOOKS
from mmdet.structures.bbox import BaseBoxes
from mmengine.dist import all_gather_object, collect_results, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from rcnn_plugin.evaluation.functional import f1_curve
from rcnn_plugin.evaluation.metrics import (
    ConfusionMatrixMetric,
    PRCurveMetric,
)
from rcnn_plugin.evaluation.metrics.pr_curve_metric import class_key

from .figures import grid_figure, save_png
from .val_samples import box_scale, gt_in_original_frame

__all__ = ['EvalFiguresHook']


def plot_f1(names: Sequence[str], curves: List[Optional[dict]],
            path: str) -> Optional[float]:
    """F1 against the score threshold per class, and their mean.

    Args:
        names (Sequence[str]): Class names.
        curves (list[dict | None]): :func:`f1_curve` per class, None for a
            class without ground truth.
        path (str): The ``.png`` to write.

    Returns:
        float, optional: The threshold of the best mean F1 (None when no
        class has ground truth).
    """
    fig, (ax,) = grid_figure(1, panel=(6.5, 4.5))
    valid = [c for c in curves if c is not None]
    best_thr = None
    for name, cur in zip(names, curves):
        if cur is not None:
            ax.plot(cur['thresholds'], cur['f1'], lw=1, label=name)
    if valid:
        thr = valid[0]['thresholds']
        mean = np.mean([c['f1'] for c in valid], axis=0)
        best = int(np.argmax(mean))
        best_thr = float(thr[best])
        ax.plot(thr, mean, lw=3, color='black',
                label=f'all classes {mean[best]:.2f} at {best_thr:.2f}')
    else:
        ax.text(0.5, 0.5, 'no ground truth', ha='center',
                transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel('score threshold')
    ax.set_ylabel('F1 (IoU 0.5)')
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize='small', loc='lower left')
    save_png(fig, path)
    return best_thr


def plot_class_ap(names: Sequence[str], metrics: dict, path: str) -> str:
    """Horizontal bars of COCO AP and AP50 per class.

    Args:
        names (Sequence[str]): Class names.
        metrics (dict): :meth:`PRCurveMetric.compute_metrics` output.
        path (str): The ``.png`` to write.

    Returns:
        str: ``path``.
    """
    ap = np.array([metrics[f'bbox_AP_{class_key(n)}'] for n in names])
    ap50 = np.array([metrics[f'bbox_AP50_{class_key(n)}'] for n in names])
    fig, (ax,) = grid_figure(1, panel=(6.5, 1.2 + 0.35 * len(names)))
    pos = np.arange(len(names))
    ax.barh(pos - 0.2, np.clip(ap50, 0, None), 0.4, label='AP50')
    ax.barh(pos + 0.2, np.clip(ap, 0, None), 0.4, label='AP (0.5:0.95)')
    for i, (a, a50) in enumerate(zip(ap, ap50)):
        text = 'no ground truth' if a50 < 0 else f'{a50:.3f} / {a:.3f}'
        ax.text(max(a50, 0) + 0.01, i, text, va='center', fontsize=7)
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel('box AP (COCO, 101-point)')
    ax.set_title(f'per-class AP; mAP50 {metrics["bbox_mAP_50"]:.3f}, '
                 f'mAP {metrics["bbox_mAP"]:.3f}', fontsize=9)
    ax.legend(fontsize='small', loc='lower right')
    return save_png(fig, path)


def ground_truth_to_original(sample: BaseDataElement) -> BaseDataElement:
    """A shallow copy of ``sample`` whose ground-truth and ignored boxes,
    loaded before the resize, are scaled back to the original image.

    Args:
        sample (DetDataSample): A validation sample with predictions.

    Returns:
        DetDataSample: The copy (the sample itself is not changed).
    """
    scale = box_scale(sample)
    out = sample.new()
    for key in ('gt_instances', 'ignored_instances'):
        inst = sample.get(key)
        if inst is None or 'bboxes' not in inst:
            continue
        moved, boxes = inst.new(), inst.bboxes
        if isinstance(boxes, BaseBoxes):
            moved.bboxes = boxes.clone()
            moved.bboxes.rescale_(tuple(1.0 / scale[:2]))
        else:
            moved.bboxes = boxes / boxes.new_tensor(scale)
        out.set_field(moved, key)
    return out


@HOOKS.register_module()
class EvalFiguresHook(Hook):
    """Write the evaluation figures of each validation into the work dir.

    Keeps every validation image's boxes (as this package's metrics do,
    :class:`BaseDetMetric`) and, after the evaluation, runs the metrics
    on them with ``out_dir=runner.work_dir`` and ``prefix``:

    - :class:`ConfusionMatrixMetric` (``score_thr``, ``iou_thr``):
      ``<prefix>_confusion_matrix.png`` and ``.csv``;
    - :class:`PRCurveMetric`: ``<prefix>_pr_curves.png`` (IoU 0.5 and
      0.75) and ``<prefix>_per_class_ap.csv``;
    - ``<prefix>_per_class_ap.png``: AP50 and AP bars per class;
    - ``<prefix>_f1_curve.png``: F1 against the score threshold per class
      at IoU 0.5 (:func:`f1_curve` on PRCurveMetric's COCO matching) and
      their mean; the best threshold is logged.

    A hook rather than the metrics in ``val_evaluator``: an overlay's
    ``val_evaluator`` replaces the config's (whose CocoMetric names its
    dataset's annotation file), while a hook adds the figures to any
    config. Their keys are not added to the evaluation's metrics (the
    evaluator's are the ones that count). The figures are rewritten at each
    evaluation (the tracker backends also get them). As for the metrics,
    the val pipeline must load annotations; without, a warning once and no
    figures.

    Args:
        score_thr (float): Score threshold of the confusion matrix.
            Defaults to 0.3.
        iou_thr (float): IoU of a hit in the confusion matrix.
            Defaults to 0.5.
        prefix (str): File name prefix. Defaults to 'val'.
    """

    priority = 'LOW'

    def __init__(self, score_thr: float = 0.3, iou_thr: float = 0.5,
                 prefix: str = 'val') -> None:
        # The metrics validate the thresholds.
        self._confusion = ConfusionMatrixMetric(score_thr, iou_thr,
                                                prefix=prefix)
        self._pr = PRCurveMetric(prefix=prefix)
        self.prefix = prefix
        self._warned = False
        self._skip = False

    def before_val_epoch(self, runner) -> None:
        """Forget the previous evaluation's boxes.

        Args:
            runner (Runner): The runner.
        """
        self._pr.results.clear()
        self._skip = False
        # the class count checks each batch's labels (from the first
        # validation on; draw() set it only after one)
        meta = runner.val_dataloader.dataset.metainfo
        self._pr.dataset_meta = self._confusion.dataset_meta = meta
        # The predictions are in the original image; so is the ground
        # truth where the pipeline loads it after Resize (mmdet's test
        # pipelines), else it is brought there per sample.
        self._original = gt_in_original_frame(runner.val_dataloader.dataset)

    def after_val_iter(self, runner, batch_idx: int,
                       data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Keep the batch's boxes, scores and labels.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch. Defaults to None.
            outputs (Sequence, optional): Data samples with predictions.
                Defaults to None.
        """
        if self._skip:
            return
        outputs = list(outputs or [])
        if not getattr(self, '_original', True):
            outputs = [ground_truth_to_original(s) for s in outputs]
        try:
            self._pr.process(data_batch, outputs)
        except ValueError as exc:
            self._skip = True
            if not self._warned:
                self._warned = True
                print_log(f'EvalFiguresHook: no figures: {exc}',
                          logger='current', level=logging.WARNING)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Compute and draw the figures (main process).

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): This evaluation's metrics (unused).
                Defaults to None.
        """
        # every rank collects, or none: one rank's bad batch must not
        # leave the others waiting in collect_results
        if any(all_gather_object(self._skip)):
            self._pr.results.clear()
            return
        results = collect_results(self._pr.results,
                                  len(runner.val_dataloader.dataset), 'cpu')
        self._pr.results.clear()
        if is_main_process() and results:
            self.draw(results, runner.val_dataloader.dataset.metainfo,
                      runner.work_dir)

    def draw(self, results: List[dict], meta: dict, out_dir: str) -> dict:
        """Write every figure and table from per-image records.

        Args:
            results (list[dict]): Records of :meth:`BaseDetMetric.process`.
            meta (dict): Dataset metainfo with ``classes``.
            out_dir (str): Where the files go.

        Returns:
            dict: PRCurveMetric's metrics (unprefixed keys).
        """
        for metric in (self._confusion, self._pr):
            metric.dataset_meta = meta
            metric.out_dir = out_dir
        self._confusion.compute_metrics(results)
        ap = self._pr.compute_metrics(results)
        names = self._pr.class_names
        plot_class_ap(names, ap, self._path(out_dir, 'per_class_ap.png'))
        curves = []
        for label in range(len(names)):
            scores, status, num_gt = self._pr.class_matches(
                results, label, 0.5)
            curves.append(f1_curve(scores, status, num_gt) if num_gt else
                          None)
        path = self._path(out_dir, 'f1_curve.png')
        best = plot_f1(names, curves, path)
        if best is not None:
            print_log(f'EvalFiguresHook: best mean F1 at score threshold '
                      f'{best:.2f} ({path})', logger='current')
        return ap

    def _path(self, out_dir: str, name: str) -> str:
        return osp.join(out_dir, f'{self.prefix}_{name}')
