"""Corruption benchmark numbers: P, mPC and rPC (Michaelis et al. 2019).

A sweep evaluates a detector on the clean images and on each corruption at
each severity 1 to 5. For every metric the evaluator returns:
P is the clean value, mPC the mean over the corruption x severity
conditions (severity 0, the clean image, excluded) and rPC = mPC / P.

Everything here works on plain metric dicts, as evaluators return them
(``{'coco/bbox_mAP': 0.41, 'pascal_voc/mAP': 0.62, ...}``), so any
evaluator or list of evaluators works. Per-class numbers are the metric
keys that name a class (``pr/bbox_AP50_WBC``, CocoMetric's classwise
``coco/WBC_precision``, ``report/WBC_f1``); :class:`PerClassAP50` adds
per-class box AP50 to an evaluator that has none.
"""
import csv
import json
import logging
import math
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from ..utils.fileio import atomic_open
from .metrics.base_det_metric import new_figure
from .metrics.pr_curve_metric import PRCurveMetric, class_key, class_keys

__all__ = [
    'CLEAN', 'PerClassAP50', 'condition_name', 'condition_out_dirs',
    'numeric_metrics',
    'split_class_key', 'summarize', 'per_class_summary', 'main_metric',
    'robustness_table', 'write_outputs', 'plot_heatmap'
]

CLEAN = 'clean'
Metrics = Dict[str, float]


class PerClassAP50(PRCurveMetric):
    """Per-class box AP at IoU 0.5 (COCO's 101-point AP), and nothing else.

    The cheap part of :class:`PRCurveMetric` (one IoU instead of ten, no
    figure, no file), for a sweep that evaluates many times. Keys:
    ``<prefix>/bbox_AP50_<class>``, -1.0 for a class without ground truth.
    """
    default_prefix = 'per_class'

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """AP50 of each class.

        Args:
            results (list): Per-image records from ``process``.

        Returns:
            dict: ``bbox_AP50_<class>`` -> AP50.
        """
        return {  # class_keys: 'a b' and 'a_b' would share one key
            f'bbox_AP50_{key}':
            float(self.class_curves(results, label, 0.5)['ap'])
            for label, key in enumerate(class_keys(self.class_names))
        }


def condition_name(corruption: Optional[str], severity: int) -> str:
    """``'clean'`` for no corruption or severity 0, else ``'fog_s3'``.

    Args:
        corruption (str, optional): Corruption name, None for clean.
        severity (int): 0 to 5.

    Returns:
        str: The condition's name (also its file name).
    """
    if corruption is None or severity == 0:
        return CLEAN
    return f'{corruption}_s{severity}'


def condition_out_dirs(metrics: Sequence, default: str, name: str,
                       bases: Dict[int, str]) -> None:
    """Point each file-writing metric at ``<its folder>/conditions/<name>``.

    One evaluator serves every condition of a sweep: without this, each
    condition's per-class reports and figures overwrite the last one's.

    Args:
        metrics (Sequence): The evaluator's metrics; those with
            ``resolve_out_dir`` (:class:`BaseDetMetric`) are moved.
        default (str): The folder of a metric without ``out_dir`` (the
            run's log folder, where it would write).
        name (str): The condition (:func:`condition_name`).
        bases (dict): Each metric's own folder, kept between calls.
    """
    for metric in metrics:
        if hasattr(metric, 'resolve_out_dir'):
            base = bases.setdefault(id(metric), metric.out_dir or default)
            metric.out_dir = osp.join(base, 'conditions', name)


def numeric_metrics(metrics: dict) -> Metrics:
    """The numeric entries of an evaluator's output, as floats.

    Args:
        metrics (dict): ``Evaluator.evaluate`` output (may hold strings
            such as CocoMetric's ``*_copypaste``).

    Returns:
        dict: Key -> float, other entries dropped.
    """
    out = {}
    for key, value in metrics.items():
        if hasattr(value, 'item'):  # a numpy / torch scalar
            try:
                value = value.item()
            except (ValueError, RuntimeError):  # more than one element
                continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def _defined(value: Optional[float]) -> Optional[float]:
    """None for a missing, NaN or negative value (COCO's -1: no GT)."""
    if value is None or math.isnan(value) or value < 0:
        return None
    return float(value)


def split_class_key(key: str,
                    class_names: Sequence[str]) -> Optional[Tuple[str, str]]:
    """Split a per-class metric key into (metric, class), else None.

    A key names a class when the part after the prefix ends with
    ``_<class>`` (``pr/bbox_AP50_WBC``) or starts with ``<class>_``
    (``coco/WBC_precision``, ``report/WBC_f1``); the class may be written
    as its :func:`class_key` (``_`` for spaces, slashes and other
    characters loggers refuse). The longest matching class wins.

    Args:
        key (str): A metric key.
        class_names (Sequence[str]): The dataset's classes.

    Returns:
        tuple, optional: ``('pr/bbox_AP50', 'WBC')``, or None.
    """
    prefix, sep, rest = key.rpartition('/')
    best = None
    for name in class_names:
        for form in {str(name), class_key(name)}:
            if len(rest) <= len(form) + 1:
                continue
            if rest.endswith('_' + form):
                metric = rest[:-len(form) - 1]
            elif rest.startswith(form + '_'):
                metric = rest[len(form) + 1:]
            else:
                continue
            if best is None or len(form) > best[0]:
                best = (len(form), prefix + sep + metric, str(name))
    return None if best is None else best[1:]


def fill_empty(conditions: Dict[str, Metrics]) -> Dict[str, Metrics]:
    """Conditions with 0.0 where an evaluator returned nothing at all.

    mmdet's ``CocoMetric`` returns no key when nothing is detected. Such a
    condition gets 0.0 for that prefix's keys (``coco/...``) whose clean
    value is defined, with a warning; other missing keys stay missing.

    Args:
        conditions (dict): Condition name -> metrics, ``'clean'`` included.

    Returns:
        dict: A new dict (the inputs are not changed).
    """
    if CLEAN not in conditions:
        raise ValueError('the clean condition is missing')
    clean = conditions[CLEAN]
    out, empty = {}, {}
    for name, m in conditions.items():
        prefixes = {k.rpartition('/')[0] for k in m}
        gone = sorted({k.rpartition('/')[0] for k in clean} - prefixes)
        out[name] = dict(m)
        if name == CLEAN or not gone:
            continue
        empty[name] = gone
        for key, value in clean.items():
            if key.rpartition('/')[0] in gone and \
                    _defined(value) is not None:
                out[name][key] = 0.0
    if empty:
        print_log('no metric at all (no detection?) under '
                  + '; '.join(f'{n}: {", ".join(p) or "(no prefix)"}'
                              for n, p in empty.items())
                  + ': counted as 0.0 where the clean value is defined',
                  logger='current', level=logging.WARNING)
    return out


def summarize(conditions: Dict[str, Metrics]) -> Dict[str, dict]:
    """P, mPC and rPC of every metric key.

    Args:
        conditions (dict): Condition name (:func:`condition_name`) ->
            metrics; ``'clean'`` must be there.

    Returns:
        dict: Key -> ``dict(P, mPC, rPC, n, of)``; ``n`` of the ``of``
        corrupted conditions had a defined value (missing, NaN and
        negative values are left out); a number that cannot be computed
        is None. A condition whose evaluator returned no key at all under
        a prefix scores 0.0 on that prefix's keys (:func:`fill_empty`):
        leaving it out would raise mPC.
    """
    conditions = fill_empty(conditions)
    keys = list(dict.fromkeys(k for m in conditions.values() for k in m))
    clean = conditions[CLEAN]
    out = {}
    for key in keys:
        p = _defined(clean.get(key))
        values = [_defined(m.get(key)) for name, m in conditions.items()
                  if name != CLEAN]
        ok = [v for v in values if v is not None]
        mpc = float(np.mean(ok)) if ok else None
        rpc = mpc / p if mpc is not None and p else None
        out[key] = dict(P=p, mPC=mpc, rPC=rpc, n=len(ok), of=len(values))
    return out


def per_class_summary(summary: Dict[str, dict],
                      class_names: Sequence[str]) -> Tuple[dict, dict]:
    """Split :func:`summarize`'s output into overall and per-class parts.

    Args:
        summary (dict): Output of :func:`summarize`.
        class_names (Sequence[str]): The dataset's classes.

    Returns:
        tuple: ``(overall, per_class)``: key -> stats, and class ->
        metric -> stats (every class present, maybe empty).
    """
    overall: Dict[str, dict] = {}
    per_class: Dict[str, dict] = {str(c): {} for c in class_names}
    for key, stats in summary.items():
        split = split_class_key(key, class_names)
        if split is None:
            overall[key] = stats
        else:
            per_class[split[1]][split[0]] = stats
    return overall, per_class


def main_metric(keys: Sequence[str], class_names: Sequence[str]) -> str:
    """The first overall (not per-class) metric key, e.g. ``coco/bbox_mAP``.

    Args:
        keys (Sequence[str]): Metric keys in the evaluator's order.
        class_names (Sequence[str]): The dataset's classes.

    Returns:
        str: The key.
    """
    for key in keys:
        if split_class_key(key, class_names) is None:
            return key
    if not keys:
        raise ValueError('the evaluator returned no numeric metric')
    return keys[0]


def robustness_table(conditions: Dict[str, Metrics],
                     corruptions: Sequence[str],
                     severities: Sequence[int]) -> Dict[str, dict]:
    """Metric -> corruption -> severity -> value (severity 0 is clean).

    Args:
        conditions (dict): Condition name -> metrics.
        corruptions (Sequence[str]): Row order.
        severities (Sequence[int]): Column order.

    Returns:
        dict: Values (None where missing); severities as strings (JSON).
    """
    keys = list(dict.fromkeys(k for m in conditions.values() for k in m))
    return {
        key: {
            c: {
                str(s): conditions.get(condition_name(c, s), {}).get(key)
                for s in severities
            }
            for c in corruptions
        }
        for key in keys
    }


def plot_heatmap(table: Dict[str, dict], clean: Optional[float],
                 metric: str, path: str) -> str:
    """Corruption x severity heatmap of one metric, with the clean value.

    Args:
        table (dict): Corruption -> severity -> value (one metric of
            :func:`robustness_table`).
        clean (float, optional): The clean value, shown in the title.
        metric (str): The metric's key, for the labels.
        path (str): The PNG to write.

    Returns:
        str: ``path``.
    """
    rows = list(table)
    cols = list(next(iter(table.values()))) if rows else []
    grid = np.array([[np.nan if table[r][c] is None else table[r][c]
                      for c in cols] for r in rows], dtype=float)
    fig, ax = new_figure(2.6 + 0.9 * max(len(cols), 1),
                         1.4 + 0.38 * max(len(rows), 1))
    image = ax.imshow(grid.reshape(len(rows), len(cols)), cmap='viridis',
                      aspect='auto')
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f'{value:.3f}', ha='center', va='center',
                    fontsize=7, color='w')
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel('severity')
    title = metric if clean is None else f'{metric} (clean {clean:.3f})'
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _fmt(value: Optional[float]) -> str:
    return '' if value is None else f'{value:.6g}'


def write_outputs(out_dir: str, info: dict,
                  conditions: Dict[str, Metrics]) -> dict:
    """Write robustness.json, robustness.csv, summary.csv and the heatmap.

    Args:
        out_dir (str): Output folder.
        info (dict): Run facts kept in the JSON; needs ``corruptions``,
            ``severities`` and ``classes``; ``metric`` (optional) is the
            heatmap's metric, else :func:`main_metric`.
        conditions (dict): Condition name -> metrics, ``'clean'``
            included.

    Returns:
        dict: What ``robustness.json`` holds.
    """
    os.makedirs(out_dir, exist_ok=True)
    corruptions, severities = info['corruptions'], info['severities']
    classes = info['classes']
    filled = fill_empty(conditions)  # the CSV, the JSON and the heatmap
    summary = summarize(filled)  # (filled: it does not warn again)
    overall, per_class = per_class_summary(summary, classes)
    metric = info.get('metric') or main_metric(list(summary), classes)
    if metric not in summary:
        raise ValueError(f'metric {metric!r} is not among the evaluated '
                         f'ones: {", ".join(summary)}')
    table = robustness_table(filled, corruptions, severities)
    result = dict(info, main_metric=metric, clean=conditions[CLEAN],
                  summary=overall, per_class=per_class, table=table)
    result['classes_without_numbers'] = [
        c for c, stats in per_class.items()
        if all(s['P'] is None for s in stats.values())]
    if corruptions and severities:
        name = metric.replace('/', '_')
        result['heatmap'] = plot_heatmap(
            table[metric], summary[metric]['P'], metric,
            osp.join(out_dir, f'heatmap_{name}.png'))
    with atomic_open(osp.join(out_dir, 'robustness.json')) as f:
        json.dump(result, f, indent=1)
    keys = list(summary)
    with atomic_open(osp.join(out_dir, 'robustness.csv'), newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['corruption', 'severity', *keys])
        writer.writerow([CLEAN, 0, *(_fmt(filled[CLEAN].get(k))
                                     for k in keys)])
        for c in corruptions:
            for s in (s for s in severities if s > 0):
                m = filled.get(condition_name(c, s), {})
                writer.writerow([c, s, *(_fmt(m.get(k)) for k in keys)])
    with atomic_open(osp.join(out_dir, 'summary.csv'), newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['metric', 'class', 'P', 'mPC', 'rPC', 'n', 'of'])
        rows = [(k, '', s) for k, s in overall.items()] + [
            (k, c, s) for c, m in per_class.items() for k, s in m.items()]
        for key, cls, s in rows:
            writer.writerow([key, cls, _fmt(s['P']), _fmt(s['mPC']),
                             _fmt(s['rPC']), s['n'], s['of']])
    return result
