"""Faithfulness of saliency methods and baselines over images with GT.

Per detection (in the input frame): deletion and insertion AUC, and,
when a same-class ground-truth box overlaps it with IoU >= 0.5, the
pointing game and the energy-based pointing game against that box (see
:mod:`rcnn_plugin.evaluation.faithfulness`). The baselines reuse the
detections of the first method and replace its maps by a random map or a
centre Gaussian.
"""
import time
from typing import Dict, List, Optional

import numpy as np
import torch

from rcnn_plugin.evaluation.faithfulness import (
    blur_canvas,
    centre_gaussian_map,
    deletion_insertion,
    energy_pointing_game,
    match_gt,
    mean_canvas,
    pointing_game,
    random_map,
)

from .explainer import Explainer, Explanation

__all__ = ['BASELINES', 'baseline_maps', 'benchmark_image', 'markdown_table',
           'score_maps', 'summarise']

BASELINES = ('random', 'centre')
METRICS = ('deletion_auc', 'insertion_auc', 'pointing_game',
           'energy_pointing_game')


def baseline_maps(kind: str, n: int, hw: tuple, seed: int = 0) -> np.ndarray:
    """``n`` baseline maps: ``random`` (seed + i) or ``centre``.

    Args:
        kind (str): ``random`` or ``centre``.
        n (int): Maps.
        hw (tuple): ``(h, w)``.
        seed (int): Seed of the first random map. Defaults to 0.

    Returns:
        np.ndarray: ``(n, h, w)`` float32.
    """
    if kind not in BASELINES:
        raise ValueError(f'unknown baseline {kind!r}; valid: '
                         f'{", ".join(BASELINES)}')
    if kind == 'random':
        return np.stack([random_map(hw, seed + i) for i in range(n)]) \
            if n else np.zeros((0, *hw), np.float32)
    return np.repeat(centre_gaussian_map(hw)[None], n, axis=0)


def score_maps(expl: Explanation, maps: np.ndarray, gt_boxes: np.ndarray,
               gt_labels: np.ndarray, steps: int = 16, canvas: str = 'blur',
               seed: int = 0) -> List[Dict]:
    """Faithfulness of one map per detection of ``expl``.

    Args:
        expl (Explanation): Detections, input-frame image and adapter.
        maps (np.ndarray): ``(N, h, w)`` input-frame maps.
        gt_boxes (np.ndarray): ``(G, 4)`` ground truth, original frame.
        gt_labels (np.ndarray): ``(G,)`` classes.
        steps (int): Deletion / insertion steps. Defaults to 16.
        canvas (str): ``blur`` or ``mean``: removed pixels' values.
            Defaults to 'blur'.
        seed (int): Seed of the tie-break. Defaults to 0.

    Returns:
        List[dict]: Per detection the four metrics (pointing games None
        without a matched ground-truth box).
    """
    if canvas not in ('blur', 'mean'):
        raise ValueError(f"canvas must be 'blur' or 'mean', got {canvas!r}")
    adapter, x = expl.adapter, expl.x
    hw = tuple(adapter.meta['img_shape'][:2])
    fill = (blur_canvas if canvas == 'blur' else mean_canvas)(x, hw)
    gt = adapter.to_input(torch.as_tensor(
        np.asarray(gt_boxes, np.float32).reshape(-1, 4))).numpy()
    rows = []
    for saliency, box, det in zip(maps, expl.input_boxes, expl.detections):
        row = {}
        for mode in ('deletion', 'insertion'):
            row[f'{mode}_auc'] = deletion_insertion(
                adapter.detect, x, saliency, box, det['label'], mode, steps,
                fill, seed=seed)[0]
        match = match_gt(box.tolist(), det['label'], gt, gt_labels)
        row['pointing_game'] = None if match is None else pointing_game(
            saliency, gt[match])
        row['energy_pointing_game'] = None if match is None else \
            energy_pointing_game(saliency, gt[match])
        rows.append(row)
    return rows


def benchmark_image(explainers: Dict[str, Explainer], image: np.ndarray,
                    gt_boxes: np.ndarray, gt_labels: np.ndarray,
                    steps: int = 16, seed: int = 0,
                    baselines=BASELINES) -> Dict[str, Dict]:
    """Every method and baseline on one image.

    Args:
        explainers (Dict[str, Explainer]): Method name -> explainer (all
            with the same detection settings).
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR.
        gt_boxes (np.ndarray): ``(G, 4)`` ground truth, original frame.
        gt_labels (np.ndarray): ``(G,)`` classes.
        steps (int): Deletion / insertion steps. Defaults to 16.
        seed (int): Seed of baselines and tie-breaks. Defaults to 0.
        baselines (Sequence[str]): Baselines scored on the first method's
            detections. Defaults to ``BASELINES``.

    Returns:
        Dict[str, dict]: Per method ``rows`` (per detection) and
        ``seconds`` (maps only).
    """
    out, first = {}, None
    for name, explainer in explainers.items():
        expl = explainer.explain(image)
        first = first or expl
        out[name] = dict(seconds=expl.seconds, rows=score_maps(
            expl, expl.input_maps, gt_boxes, gt_labels, steps, seed=seed))
    for kind in baselines:
        start = time.perf_counter()
        maps = baseline_maps(kind, len(first.detections),
                             tuple(first.adapter.meta['img_shape'][:2]),
                             seed)
        seconds = time.perf_counter() - start
        out[kind] = dict(seconds=seconds, rows=score_maps(
            first, maps, gt_boxes, gt_labels, steps, seed=seed))
    return out


def _mean(values: List[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(per_image: List[Dict[str, Dict]]) -> List[Dict]:
    """One row per method: means over detections, seconds per image.

    Args:
        per_image (List[dict]): :func:`benchmark_image` outputs.

    Returns:
        List[dict]: ``method``, ``images``, ``detections``, ``matched``
        (with a ground-truth box), the four metrics, ``s_per_image``.
    """
    table = []
    for name in (per_image[0] if per_image else {}):
        rows = [r for img in per_image for r in img[name]['rows']]
        seconds = [img[name]['seconds'] for img in per_image]
        entry = dict(method=name, images=len(per_image),
                     detections=len(rows),
                     matched=sum(r['pointing_game'] is not None
                                 for r in rows))
        entry.update({k: _mean([r[k] for r in rows]) for k in METRICS})
        entry['s_per_image'] = round(float(np.mean(seconds)), 3)
        table.append(entry)
    return table


def markdown_table(table: List[Dict]) -> str:
    """The summary as a markdown table.

    Args:
        table (List[dict]): :func:`summarise` output.

    Returns:
        str: The table (deletion: lower is better; others: higher).
    """
    keys = ['method', 'images', 'detections', 'matched', *METRICS,
            's_per_image']
    head = ['method', 'images', 'dets', 'with GT', 'deletion AUC (lower)',
            'insertion AUC', 'pointing game', 'energy pointing game',
            's / image']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in table:
        lines.append('| ' + ' | '.join(
            '-' if row[k] is None else str(row[k]) for k in keys) + ' |')
    return '\n'.join(lines) + '\n'
