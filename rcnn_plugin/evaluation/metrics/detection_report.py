"""Per-class TP / FP / FN, precision, recall and F1 at one operating point."""
from typing import Dict, List, Optional

import numpy as np
from mmdet.registry import METRICS
from mmengine.logging import print_log

from ..functional.matching import FP, TP, class_ignore_mask, match_detections
from .base_det_metric import BaseDetMetric, check_fractions, format_table
from .pr_curve_metric import class_keys

HEADER = ('class', 'precision', 'recall', 'f1', 'support', 'tp', 'fp', 'fn')


def _prf(tp: int, fp: int, fn: int) -> List[float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = (2 * precision * recall / (precision + recall)
          if precision + recall else 0.0)
    return [float(precision), float(recall), float(f1)]


@METRICS.register_module()
class DetectionReport(BaseDetMetric):
    """A classification report for detections, like sklearn's.

    Detections with ``score >= score_thr`` are matched to the ground truth
    of *their own class*, image by image, with :func:`match_detections`
    (greedy by score, IoU >= ``iou_thr``, one box per detection, detections
    on ignore regions / ``iscrowd`` boxes count neither way, a second
    detection of a matched box is a FP). Per class: ``tp``; ``fp``;
    ``fn`` = support - tp; ``support`` = ground-truth boxes (ignore regions
    excluded); precision = tp / (tp + fp), recall = tp / support, F1 their
    harmonic mean, each 0.0 when its denominator is 0 (sklearn's
    ``zero_division=0``). Images without ground truth only add FPs.
    ``micro`` pools the counts of all classes; ``macro`` is the unweighted
    mean of the per-class values over the classes that have a ground-truth
    box or a detection (sklearn's ``classification_report``: a class
    absent from both is undefined, not a 0 to average); with no such class
    it is 0.0. The log says how many classes it averages.

    The table is logged; ``<prefix>_detection_report.json`` and ``.csv`` are
    written to the output dir (see :class:`BaseDetMetric`). Returned keys,
    plain floats: ``<prefix>/{macro,micro}_{precision,recall,f1}`` first
    (``save_best='auto'`` follows ``macro_precision``), then
    ``<prefix>/<class>_{precision,recall,f1}``.

    Args:
        score_thr (float): Operating score threshold. Defaults to 0.5.
        iou_thr (float): IoU for a hit. Defaults to 0.5.
        out_dir (str, optional): Output dir. Defaults to None.
        collect_device (str): Device for collecting results.
            Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to None ('report').
    """
    default_prefix = 'report'

    def __init__(self,
                 score_thr: float = 0.5,
                 iou_thr: float = 0.5,
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        check_fractions(score_thr=score_thr, iou_thr=iou_thr)
        super().__init__(out_dir, collect_device, prefix)
        self.score_thr = score_thr
        self.iou_thr = iou_thr

    def count(self, results: List[dict]) -> np.ndarray:
        """TP, FP, FN per class.

        Args:
            results (List[dict]): Per-image records from ``process``.

        Returns:
            np.ndarray: ``(C, 3)`` integer counts.
        """
        counts = np.zeros((len(self.class_names), 3), dtype=np.int64)
        for res in results:
            keep = res['pred_scores'] >= self.score_thr
            for c in range(len(counts)):
                dets = keep & (res['pred_labels'] == c)
                gts = res['gt_labels'] == c
                status, _ = match_detections(
                    res['pred_bboxes'][dets], res['pred_scores'][dets],
                    res['gt_bboxes'][gts],
                    res['ignore_bboxes'][class_ignore_mask(
                        res['ignore_labels'], c)],
                    self.iou_thr)
                tp = int((status == TP).sum())
                counts[c] += (tp, int((status == FP).sum()),
                              int(gts.sum()) - tp)
        return counts

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Count, log the table, write files and return the metrics.

        Args:
            results (list): Per-image records from ``process``.

        Returns:
            dict: Plain-float metrics (see the class doc).
        """
        keys = class_keys(self.class_names, ('micro', 'macro'))  # clash?
        counts = self.count(results)
        rows = []
        for name, (tp, fp, fn) in zip(self.class_names, counts):
            rows.append([name, *_prf(tp, fp, fn), int(tp + fn), int(tp),
                         int(fp), int(fn)])
        tp, fp, fn = (int(v) for v in counts.sum(axis=0))
        seen = counts.sum(axis=1) > 0  # a GT box or a detection
        per_class = np.array([r[1:4] for r in rows]).reshape(-1, 3)[seen]
        macro = per_class.mean(0) if len(per_class) else np.zeros(3)
        rows.append(['micro avg', *_prf(tp, fp, fn), tp + fn, tp, fp, fn])
        rows.append(['macro avg', *(float(v) for v in macro), tp + fn, tp,
                     fp, fn])
        print_log(f'Detection report (score >= {self.score_thr}, IoU >= '
                  f'{self.iou_thr}; macro over the {int(seen.sum())} of '
                  f'{len(rows) - 2} classes with a ground-truth box or a '
                  'detection):\n' + format_table(HEADER, rows), 'current')
        self.write_csv('detection_report.csv', HEADER, rows)
        self.write_json('detection_report.json', dict(
            score_thr=self.score_thr, iou_thr=self.iou_thr,
            num_images=len(results),
            classes={r[0]: dict(zip(HEADER[1:], r[1:])) for r in rows}))
        named = dict(zip(keys + ['micro', 'macro'], rows))
        metrics = {}  # the averages first: save_best='auto' takes the first
        for key in ['macro', 'micro'] + keys:
            for field, value in zip(HEADER[1:4], named[key][1:4]):
                metrics[f'{key}_{field}'] = float(value)
        return metrics
