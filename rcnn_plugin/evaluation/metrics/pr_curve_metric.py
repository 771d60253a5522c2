"""Per-class PR curves and COCO-style per-class AP / AP50 / AP75."""
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmdet.registry import METRICS
from mmengine.logging import print_log

from ..functional.curves import image_id_order, pr_curve
from ..functional.matching import class_ignore_mask, match_detections
from .base_det_metric import BaseDetMetric, format_table, new_figure

IOU_THRS = np.linspace(0.5, 0.95, 10)
# MLflow takes metric names matching ^[/\w.\- ]*$ (mmdet issue #10258);
# a class name's other characters (and its spaces) read as '_'.
_UNSAFE = re.compile(r'[^\w.\-]')


def class_key(name: str) -> str:
    """The form of a class name in metric keys (``bbox_AP50_<key>``).

    Args:
        name (str): Class name.

    Returns:
        str: The name with each character other than letters, digits,
        ``_``, ``.`` and ``-`` (spaces, slashes, brackets, ...) replaced by
        ``_``, so that every logger takes the key (MLflow's rule).
    """
    return _UNSAFE.sub('_', str(name))


def class_keys(names, reserved=()) -> List[str]:
    """:func:`class_key` of each name; two classes with one key (``'a b'``
    and ``'a_b'``), or a class keyed as a ``reserved`` row (``'micro'``),
    are an error: the later would overwrite the earlier's metrics."""
    keys, seen = [], {k: f'the {k!r} row' for k in reserved}
    for name in names:
        key = class_key(name)
        if key in seen:
            raise ValueError(
                f'class {name!r} and {seen[key]} share the metric key '
                f'{key!r} (characters other than letters, digits, _ . - '
                'read as _): rename one class')
        seen[key] = f'class {name!r}'
        keys.append(key)
    return keys


@METRICS.register_module()
class PRCurveMetric(BaseDetMetric):
    """COCO's box AP computed per class, returned to loggers, with curves.

    Matching is COCO's, per image and class: the ``max_dets`` best scored
    detections of the class are matched by :func:`match_detections` (greedy
    by score, IoU >= t, one box per detection, detections on ``iscrowd`` /
    ignore boxes with intersection over detection area >= t are ignored);
    the statuses are pooled over images and AP is the mean of the
    precision envelope at 101 recall points (:func:`pr_curve`). AP is the
    mean over t = 0.50:0.05:0.95; AP50 / AP75 at t = 0.5 / 0.75. This
    equals pycocotools' ``COCOeval`` (area 'all', ``maxDets=100``) on the
    same boxes; a test checks it to 1e-6. A class without ground truth has
    AP -1.0 and is left out of the means, as in pycocotools.

    Returned keys, plain floats: ``<prefix>/bbox_{mAP,mAP_50,mAP_75}``
    first (``save_best='auto'`` follows ``bbox_mAP``), then
    ``<prefix>/bbox_{AP,AP50,AP75}_<class>`` (e.g. ``pr/bbox_AP50_WBC``;
    see :func:`class_key`), usable by ``save_best`` and
    ``EarlyStoppingHook``. Writes
    ``<prefix>_pr_curves.png`` (one curve per class at IoU 0.5 and 0.75)
    and ``<prefix>_per_class_ap.csv``.

    Args:
        max_dets (int): Detections kept per image and class (COCO: 100).
            Defaults to 100.
        out_dir (str, optional): Output dir. Defaults to None.
        collect_device (str): Device for collecting results.
            Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to None ('pr').
    """
    default_prefix = 'pr'

    def __init__(self,
                 max_dets: int = 100,
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if max_dets < 1:
            raise ValueError(f'max_dets must be >= 1, got {max_dets}')
        super().__init__(out_dir, collect_device, prefix)
        self.max_dets = max_dets

    def class_curves(self, results: List[dict], label: int,
                     thr: float) -> dict:
        """PR curve of one class at one IoU threshold.

        Args:
            results (List[dict]): Per-image records from ``process``.
            label (int): Class index.
            thr (float): IoU threshold.

        Returns:
            dict: See :func:`pr_curve`.
        """
        return pr_curve(*self.class_matches(results, label, thr))

    def class_matches(self, results: List[dict], label: int,
                      thr: float) -> Tuple[np.ndarray, np.ndarray, int]:
        """Scores and COCO matching statuses of one class at one IoU.

        Args:
            results (List[dict]): Per-image records from ``process``.
            label (int): Class index.
            thr (float): IoU threshold.

        Returns:
            tuple: ``(scores, status, num_gt)``: the class's detection
            scores pooled over images in image-id order (so the stable
            sort by score breaks ties by image id, as ``COCOeval``), their
            ``TP`` / ``FP`` / ``IGNORED`` status and the number of its
            ground-truth boxes.
        """
        scores, status, num_gt = [], [], 0
        for res in (results[i] for i in image_id_order(results)):
            det = np.flatnonzero(res['pred_labels'] == label)
            order = np.argsort(-res['pred_scores'][det], kind='mergesort')
            det = det[order[:self.max_dets]]
            gt = res['gt_labels'] == label
            st, _ = match_detections(
                res['pred_bboxes'][det], res['pred_scores'][det],
                res['gt_bboxes'][gt],
                res['ignore_bboxes'][class_ignore_mask(res['ignore_labels'],
                                                       label)], thr)
            scores.append(res['pred_scores'][det])
            status.append(st)
            num_gt += int(gt.sum())
        return (np.concatenate(scores or [np.zeros(0)]),
                np.concatenate(status or [np.zeros(0, int)]), num_gt)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Per-class AP at 10 IoUs, the curves, the table and the files.

        Args:
            results (list): Per-image records from ``process``.

        Returns:
            dict: Plain-float metrics (see the class doc).
        """
        names = self.class_names
        keys = class_keys(names)  # a clash stops before the work
        curves = [[self.class_curves(results, c, t) for t in IOU_THRS]
                  for c in range(len(names))]
        ap = np.array([[cur['ap'] for cur in row] for row in curves])
        ap = ap.reshape(len(names), len(IOU_THRS))
        table = np.stack([ap.mean(1), ap[:, 0], ap[:, 5]], axis=1)
        table[ap[:, 0] < 0] = -1.0
        valid = table[:, 0] >= 0
        means = table[valid].mean(0) if valid.any() else -np.ones(3)
        # The means first: save_best='auto' follows the first key.
        metrics = {f'bbox_{key}': float(value)
                   for key, value in zip(('mAP', 'mAP_50', 'mAP_75'), means)}
        for key, (ap_all, ap50, ap75) in zip(keys, table):
            metrics[f'bbox_AP_{key}'] = float(ap_all)
            metrics[f'bbox_AP50_{key}'] = float(ap50)
            metrics[f'bbox_AP75_{key}'] = float(ap75)
        rows = [[n, *map(float, r)] for n, r in zip(names, table)]
        rows.append(['mean', *map(float, means)])
        header = ['class', 'AP', 'AP50', 'AP75']
        print_log('Per-class box AP (COCO, 101-point):\n'
                  + format_table(header, rows), 'current')
        self.write_csv('per_class_ap.csv', header, rows)
        self._plot(names, curves)
        return metrics

    def _plot(self, names: List[str], curves: list) -> None:
        fig, axes = new_figure(10.0, 4.5)
        fig.delaxes(axes)
        for i, t_idx in enumerate((0, 5)):
            ax = fig.add_subplot(1, 2, i + 1)
            for name, row in zip(names, curves):
                cur = row[t_idx]
                if cur['ap'] < 0:
                    continue
                recall = np.r_[0.0, cur['recall']]
                precision = np.r_[1.0 if len(cur['precision']) else 0.0,
                                  cur['precision']]
                ax.plot(recall, precision,
                        label=f'{name} (AP {cur["ap"]:.3f})')
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel('recall')
            ax.set_ylabel('precision')
            ax.set_title(f'IoU {IOU_THRS[t_idx]:.2f}')
            ax.grid(True, alpha=0.3)
            ax.legend(loc='lower left', fontsize='small')
        fig.tight_layout()
        self.save_figure(fig, 'pr_curves')
