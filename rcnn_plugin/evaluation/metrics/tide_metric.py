"""TIDE error analysis as a metric: what each error type costs in mAP."""
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.logging import print_log

from ..functional.tide import (
    ERROR_TYPES,
    SPECIAL_TYPES,
    pool_errors,
    tide_summary,
)
from .base_det_metric import BaseDetMetric, check_fractions, new_figure

ALL_TYPES = ERROR_TYPES + SPECIAL_TYPES


def _num(value: float) -> Optional[float]:
    """A JSON-safe float: None for NaN."""
    value = float(value)
    return None if math.isnan(value) else value


def tide_report(summary: dict, class_names: Sequence[str],
                pos_thr: float = 0.5, bg_thr: float = 0.1) -> dict:
    """The JSON form of :func:`tide_summary`'s output.

    Args:
        summary (dict): Output of :func:`tide_summary`.
        class_names (Sequence[str]): Class names indexed by label.
        pos_thr (float): Foreground IoU t_f used. Defaults to 0.5.
        bg_thr (float): Background IoU t_b used. Defaults to 0.1.

    Returns:
        dict: ``settings``, ``overall`` (``mAP``, ``dAP`` and ``counts`` per
        type) and ``per_class`` (the same per class name; ``AP`` and
        ``dAP`` are None for a class without ground truth).
    """
    overall = dict(mAP=summary['mAP'],
                   dAP={k: summary['dAP'][k] for k in ALL_TYPES},
                   counts=dict(summary['counts']))
    per_class = {}
    for c, name in enumerate(class_names):
        per_class[str(name)] = dict(
            AP=_num(summary['AP'][c]),
            dAP={k: _num(summary['class_dAP'][k][c]) for k in ALL_TYPES},
            counts={k: int(summary['class_counts'][k][c])
                    for k in ERROR_TYPES})
    settings = dict(pos_thr=pos_thr, bg_thr=bg_thr,
                    ap='COCO 101-point interpolated AP at IoU pos_thr',
                    units='mAP and dAP in 0..1 (TIDE prints x100)',
                    implementation='rcnn_plugin (tidecv 1.0.1 definitions)')
    return dict(settings=settings, overall=overall, per_class=per_class)


def tide_rows(report: dict) -> tuple:
    """Table header and rows: one row per class, then ``all``.

    Args:
        report (dict): Output of :func:`tide_report`.

    Returns:
        tuple: ``(header, rows)``; dAP columns ``dAP_<type>``, count
        columns ``n_<type>``; None where a class has no ground truth.
    """
    header = (['class', 'AP'] + [f'dAP_{k}' for k in ALL_TYPES]
              + [f'n_{k}' for k in ERROR_TYPES])
    entries = list(report['per_class'].items())
    overall = report['overall']
    entries.append(('all', dict(AP=overall['mAP'], dAP=overall['dAP'],
                                counts=overall['counts'])))
    rows = [[name, e['AP'], *(e['dAP'][k] for k in ALL_TYPES),
             *(e['counts'][k] for k in ERROR_TYPES)] for name, e in entries]
    return header, rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; floats with 3 decimals, None as ``-``.

    Args:
        header (Sequence[str]): Column names.
        rows (Sequence[Sequence]): Table rows.

    Returns:
        str: The table.
    """
    def cell(v):
        if v is None:
            return '-'
        return f'{v:.3f}' if isinstance(v, float) else str(v)

    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def plot_tide(report: dict):
    """Bar charts: overall dAP per type, and per class for the six types.

    Args:
        report (dict): Output of :func:`tide_report`.

    Returns:
        matplotlib.figure.Figure: The figure (Agg canvas).
    """
    names = list(report['per_class'])
    fig, ax = new_figure(11.0, 4.5)
    fig.delaxes(ax)
    ax = fig.add_subplot(1, 2, 1)
    values = [report['overall']['dAP'][k] for k in ALL_TYPES]
    colours = ['C0'] * len(ERROR_TYPES) + ['C7'] * len(SPECIAL_TYPES)
    ax.barh(ALL_TYPES[::-1], values[::-1], color=colours[::-1])
    ax.set_xlabel('dAP (mAP gained by fixing the type)')
    ax.set_title(f'mAP@{report["settings"]["pos_thr"]:g} '
                 f'{report["overall"]["mAP"]:.3f}')
    ax = fig.add_subplot(1, 2, 2)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(ERROR_TYPES))
    for i, name in enumerate(names):
        dap = report['per_class'][name]['dAP']
        ax.bar(x + i * width, [dap[k] or 0.0 for k in ERROR_TYPES],
               width, label=name)
    ax.set_xticks(x + 0.4 - width / 2, ERROR_TYPES)
    ax.set_ylabel('dAP of the class')
    ax.set_title('per class')
    if names:
        ax.legend(fontsize='small')
    fig.tight_layout()
    return fig


@METRICS.register_module()
class TIDEMetric(BaseDetMetric):
    """TIDE (Bolya et al., ECCV 2020): split the missed mAP by error type.

    Detections are matched per image and class at IoU ``pos_thr`` by
    :func:`match_detections` (greedy by score, as ``PRCurveMetric``);
    each false positive gets one of ``Cls``, ``Loc``, ``Both``, ``Dupl``,
    ``Bkg``, and each undetected box no ``Cls`` / ``Loc`` error aims at is
    ``Miss`` (definitions in :mod:`rcnn_plugin.evaluation.functional.tide`).
    The mAP is COCO's 101-point AP at ``pos_thr`` over the classes with
    ground truth (equal to ``PRCurveMetric``'s ``bbox_mAP_50``); dAP of a
    type is the mAP after an oracle fixes that type alone, minus the mAP.

    Returned keys, plain floats: ``<prefix>/mAP``,
    ``<prefix>/dAP_<type>`` for the six types and ``FP`` / ``FN``, and
    ``<prefix>/n_<type>`` (error counts). Writes ``<prefix>_tide.json``
    (overall and per class), ``<prefix>_per_class.csv`` and
    ``<prefix>_tide.png``; logs the per-class table.

    Args:
        pos_thr (float): Foreground IoU t_f. Defaults to 0.5.
        bg_thr (float): Background IoU t_b. Defaults to 0.1.
        max_dets (int): Detections kept per image and class.
            Defaults to 100.
        out_dir (str, optional): Output dir. Defaults to None.
        collect_device (str): Device for collecting results.
            Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to None ('tide').
    """
    default_prefix = 'tide'

    def __init__(self,
                 pos_thr: float = 0.5,
                 bg_thr: float = 0.1,
                 max_dets: int = 100,
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        check_fractions(pos_thr=pos_thr, bg_thr=bg_thr)
        if bg_thr > pos_thr:
            raise ValueError(f'bg_thr ({bg_thr}) must not exceed pos_thr '
                             f'({pos_thr})')
        if max_dets < 1:
            raise ValueError(f'max_dets must be >= 1, got {max_dets}')
        super().__init__(out_dir, collect_device, prefix)
        self.pos_thr = pos_thr
        self.bg_thr = bg_thr
        self.max_dets = max_dets

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep boxes, scores, labels and the image path of each image.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): Data samples with
                ``pred_instances`` and ``gt_instances``.
        """
        super().process(data_batch, data_samples)
        new = self.results[len(self.results) - len(data_samples):]
        for rec, sample in zip(new, data_samples):
            rec['img_path'] = sample.get('img_path')

    def analyse(self, results: List[dict]) -> tuple:
        """Pooled errors and the JSON report of per-image records.

        Args:
            results (List[dict]): Per-image records from ``process``.

        Returns:
            tuple: ``(pooled, report)`` of :func:`pool_errors` and
            :func:`tide_report`.
        """
        num_classes = len(self.class_names)
        pooled = pool_errors(results, num_classes, self.pos_thr,
                             self.bg_thr, self.max_dets)
        summary = tide_summary(pooled, num_classes)
        return pooled, tide_report(summary, self.class_names,
                                   self.pos_thr, self.bg_thr)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Run TIDE, log the table, write JSON, CSV and PNG.

        Args:
            results (list): Per-image records from ``process``.

        Returns:
            dict: Plain-float metrics (see the class doc).
        """
        _, report = self.analyse(results)
        header, rows = tide_rows(report)
        print_log(f'TIDE errors at IoU {self.pos_thr:g} (dAP: mAP gained '
                  'by fixing each type):\n' + markdown_table(header, rows),
                  'current')
        self.write_json('tide.json', report)
        self.write_csv('per_class.csv', header, rows)
        self.save_figure(plot_tide(report), 'tide')
        overall = report['overall']
        metrics = dict(mAP=float(overall['mAP']))
        metrics.update({f'dAP_{k}': float(v)
                        for k, v in overall['dAP'].items()})
        metrics.update({f'n_{k}': float(v)
                        for k, v in overall['counts'].items()})
        return metrics
