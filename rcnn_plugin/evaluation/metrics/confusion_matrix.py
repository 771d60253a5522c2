"""Confusion matrix between classes, with a background row and column."""
from typing import Dict, List, Optional

import numpy as np
from mmdet.registry import METRICS
from mmengine.logging import print_log

from ..functional.matching import TP, match_detections
from .base_det_metric import (
    BaseDetMetric,
    check_fractions,
    format_table,
    new_figure,
)


@METRICS.register_module()
class ConfusionMatrixMetric(BaseDetMetric):
    """Class confusion of the detections at one operating point.

    Rows are the ground-truth class, columns the predicted class; index
    ``C`` (the last) is background. Per image, detections with
    ``score >= score_thr`` are matched to the ground truth *regardless of
    class* with :func:`match_detections` (greedy by score, IoU >=
    ``iou_thr``, one box per detection; a detection on an ignore region
    that matches no box is dropped). Then a matched pair adds 1 to
    ``[gt class, predicted class]``; an unmatched detection (also a second
    detection of a matched box) to ``[background, predicted class]``; an
    unmatched box to ``[gt class, background]``. Unlike mmdet's
    ``tools/analysis_tools/confusion_matrix.py``, a detection counts once.

    Writes ``<prefix>_confusion_matrix.csv`` and ``.png`` (row-normalised
    heat map with the counts printed). Returned keys, plain floats:
    ``<prefix>/class_confusions`` (matched pairs whose classes differ),
    ``<prefix>/background_fp`` and ``<prefix>/missed``.

    Args:
        score_thr (float): Operating score threshold. Defaults to 0.3.
        iou_thr (float): IoU for a hit. Defaults to 0.5.
        out_dir (str, optional): Output dir. Defaults to None.
        collect_device (str): Device for collecting results.
            Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to None ('confusion').
    """
    default_prefix = 'confusion'

    def __init__(self,
                 score_thr: float = 0.3,
                 iou_thr: float = 0.5,
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        check_fractions(score_thr=score_thr, iou_thr=iou_thr)
        super().__init__(out_dir, collect_device, prefix)
        self.score_thr = score_thr
        self.iou_thr = iou_thr

    def matrix(self, results: List[dict]) -> np.ndarray:
        """The ``(C + 1, C + 1)`` count matrix.

        Args:
            results (List[dict]): Per-image records from ``process``.

        Returns:
            np.ndarray: Counts, rows = truth, columns = prediction.
        """
        n = len(self.class_names)
        mat = np.zeros((n + 1, n + 1), dtype=np.int64)
        for res in results:
            keep = res['pred_scores'] >= self.score_thr
            labels = res['pred_labels'][keep]
            status, gt_idx = match_detections(
                res['pred_bboxes'][keep], res['pred_scores'][keep],
                res['gt_bboxes'], res['ignore_bboxes'], self.iou_thr)
            gt_labels = res['gt_labels']
            for label, st, g in zip(labels, status, gt_idx):
                if st == TP:
                    mat[gt_labels[g], label] += 1
                elif st != -1:
                    mat[n, label] += 1
            missed = np.ones(len(gt_labels), dtype=bool)
            missed[gt_idx[gt_idx >= 0]] = False
            np.add.at(mat, (gt_labels[missed], n), 1)
        return mat

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Build the matrix, log it, write CSV and PNG.

        Args:
            results (list): Per-image records from ``process``.

        Returns:
            dict: Plain-float summary counts (see the class doc).
        """
        mat = self.matrix(results)
        names = self.class_names + ['background']
        rows = [[name, *map(int, row)] for name, row in zip(names, mat)]
        header = ['truth \\ pred', *names]
        print_log('Confusion matrix (rows: truth, columns: prediction):\n'
                  + format_table(header, rows), 'current')
        self.write_csv('confusion_matrix.csv', header, rows)
        self._plot(mat, names)
        n = len(names) - 1
        offdiag = mat[:n, :n].sum() - np.trace(mat[:n, :n])
        return dict(class_confusions=float(offdiag),
                    background_fp=float(mat[n, :n].sum()),
                    missed=float(mat[:n, n].sum()))

    def _plot(self, mat: np.ndarray, names: List[str]) -> None:
        size = 1.2 + 0.6 * len(names)
        fig, ax = new_figure(size + 1.0, size)
        totals = mat.sum(axis=1, keepdims=True)
        norm = mat / np.maximum(totals, 1)
        image = ax.imshow(norm, cmap='Blues', vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, label='fraction of row')
        ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel('predicted')
        ax.set_ylabel('ground truth')
        for (i, j), count in np.ndenumerate(mat):
            ax.text(j, i, str(count), ha='center', va='center',
                    color='white' if norm[i, j] > 0.5 else 'black')
        ax.set_title(f'score >= {self.score_thr}, IoU >= {self.iou_thr}')
        fig.tight_layout()
        self.save_figure(fig, 'confusion_matrix')
