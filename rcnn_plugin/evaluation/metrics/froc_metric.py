"""FROC: lesion-detection sensitivity at fixed false positives per image."""
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.logging import print_log

from ..functional.curves import FROC_FPS, froc_curve
from ..functional.matching import (
    CRITERIA,
    DUPLICATES,
    class_ignore_mask,
    match_detections,
)
from .base_det_metric import (
    BaseDetMetric,
    check_fractions,
    format_table,
    new_figure,
)


def _fp_key(rate: float) -> str:
    # Not 'sens@...': MLflow takes only ^[/\w.\- ]*$ (mmdet issue #10258).
    return f'sens_at_{rate:g}fp'


@METRICS.register_module()
class FROCMetric(BaseDetMetric):
    """Free-response ROC, as in LUNA16 and DeepLesion.

    Per image (and per class unless ``class_agnostic``), all detections are
    matched with :func:`match_detections`: greedy by score; a hit is
    IoU >= ``iou_thr`` (``criterion='iou'``) or the detection's centre
    inside the box (``criterion='center'``); one box per detection;
    detections on ignore regions count neither way; a second hit on a
    matched box is a FP (``duplicates='fp'``) or ignored
    (``duplicates='ignore'``, LUNA16). Because the greedy order is the
    score order, the status of a detection does not depend on the
    threshold, so the curve is one sweep over the pooled scores.
    Sensitivity = hit boxes / all boxes; FPs per image = FPs / all images
    (images without boxes count). The sensitivity at rate ``f`` is the
    best one reached with at most ``f`` FPs per image; CPM is their mean.

    Writes ``<prefix>_froc.csv`` (the curve) and ``<prefix>_froc.png``.
    Returned keys, plain floats: ``<prefix>/CPM`` first (what
    ``save_best='auto'`` follows; its name implies no rule, so give
    ``rule='greater'``), then ``<prefix>/sens_at_<f>fp`` per rate (e.g.
    ``froc/sens_at_0.125fp``).

    Args:
        fp_rates (Sequence[float]): FPs per image to read. Defaults to
            (0.125, 0.25, 0.5, 1, 2, 4, 8).
        criterion (str): ``'iou'`` or ``'center'``. Defaults to 'iou'.
        iou_thr (float): IoU for a hit with ``'iou'``. Defaults to 0.5.
        class_agnostic (bool): Ignore labels (one lesion class).
            Defaults to False.
        duplicates (str): ``'fp'`` or ``'ignore'``. Defaults to 'fp'.
        out_dir (str, optional): Output dir. Defaults to None.
        collect_device (str): Device for collecting results.
            Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to None ('froc').
    """
    default_prefix = 'froc'

    def __init__(self,
                 fp_rates: Sequence[float] = FROC_FPS,
                 criterion: str = 'iou',
                 iou_thr: float = 0.5,
                 class_agnostic: bool = False,
                 duplicates: str = 'fp',
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if criterion not in CRITERIA:
            raise ValueError(f'criterion must be one of {CRITERIA}, got '
                             f'{criterion!r}')
        if duplicates not in DUPLICATES:
            raise ValueError(f'duplicates must be one of {DUPLICATES}, '
                             f'got {duplicates!r}')
        if not fp_rates or min(fp_rates) <= 0:
            raise ValueError(f'fp_rates must be positive, got {fp_rates}')
        check_fractions(iou_thr=iou_thr)
        super().__init__(out_dir, collect_device, prefix)
        self.fp_rates = tuple(float(f) for f in fp_rates)
        self.criterion = criterion
        self.iou_thr = iou_thr
        self.class_agnostic = class_agnostic
        self.duplicates = duplicates

    def curve(self, results: List[dict]) -> dict:
        """Match every image and compute the FROC curve.

        Args:
            results (List[dict]): Per-image records from ``process``.

        Returns:
            dict: See :func:`froc_curve`.
        """
        scores, status, num_gt = [], [], 0
        for res in results:
            groups = ([None] if self.class_agnostic else
                      np.unique(np.r_[res['pred_labels'], res['gt_labels']]))
            for c in groups:
                det = (slice(None) if c is None else
                       res['pred_labels'] == c)
                gt = slice(None) if c is None else res['gt_labels'] == c
                ign = (slice(None) if c is None else
                       class_ignore_mask(res['ignore_labels'], c))
                st, _ = match_detections(
                    res['pred_bboxes'][det], res['pred_scores'][det],
                    res['gt_bboxes'][gt], res['ignore_bboxes'][ign],
                    self.iou_thr, self.criterion, self.duplicates)
                scores.append(res['pred_scores'][det])
                status.append(st)
                num_gt += len(res['gt_bboxes'][gt])
        if num_gt == 0:
            print_log('FROCMetric: the split has no ground-truth box (of the '
                      'classes counted), so sensitivity is undefined; it is '
                      'reported as 0.0', logger='current',
                      level=logging.WARNING)
        return froc_curve(np.concatenate(scores or [np.zeros(0)]),
                          np.concatenate(status or [np.zeros(0, int)]),
                          num_gt, len(results), self.fp_rates)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """FROC sensitivities and CPM; log, write CSV and PNG.

        Args:
            results (list): Per-image records from ``process``.

        Returns:
            dict: Plain-float metrics (see the class doc).
        """
        froc = self.curve(results)
        rows = [[f'{f:g}', float(s)]
                for f, s in zip(self.fp_rates, froc['at_fps'])]
        rows.append(['CPM', froc['cpm']])
        print_log(f'FROC ({self._describe()}):\n'
                  + format_table(['FPs/image', 'sensitivity'], rows),
                  'current')
        self.write_csv('froc.csv', ['score_thr', 'fps_per_image',
                                    'sensitivity'],
                       zip(froc['thresholds'].tolist(),
                           froc['fps_per_image'].tolist(),
                           froc['sensitivity'].tolist()))
        self._plot(froc)
        metrics = dict(CPM=float(froc['cpm']))  # first: save_best='auto'
        metrics.update({_fp_key(f): float(s)
                        for f, s in zip(self.fp_rates, froc['at_fps'])})
        return metrics

    def _describe(self) -> str:
        hit = ('centre inside box' if self.criterion == 'center' else
               f'IoU >= {self.iou_thr}')
        return hit + (', class-agnostic' if self.class_agnostic else '')

    def _plot(self, froc: dict) -> None:
        fig, ax = new_figure()
        ax.step(froc['fps_per_image'], froc['sensitivity'], where='post')
        ax.plot(self.fp_rates, froc['at_fps'], 'o')
        ax.set_xscale('log', base=2)
        ax.set_xlim(min(self.fp_rates) / 2, max(self.fp_rates) * 2)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel('mean false positives per image')
        ax.set_ylabel('sensitivity')
        ax.set_title(f'FROC ({self._describe()}), CPM {froc["cpm"]:.3f}')
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        self.save_figure(fig, 'froc')
