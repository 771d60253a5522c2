"""Saliency maps drawn on images: one panel per detection, and a grid."""
from typing import List, Sequence

import cv2
import numpy as np

from ..drawing import draw_detections

__all__ = ['overlay', 'saliency_grid', 'saliency_panels']


def overlay(image: np.ndarray, saliency: np.ndarray,
            alpha: float = 0.5) -> np.ndarray:
    """A JET heatmap of ``saliency`` blended over ``image``.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR.
        saliency (np.ndarray): ``(H, W)`` map in [0, 1].
        alpha (float): Weight of the heatmap. Defaults to 0.5.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 BGR.
    """
    heat = cv2.applyColorMap(
        np.uint8(np.clip(saliency, 0, 1) * 255), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 1 - alpha, heat, alpha, 0)


def saliency_panels(image: np.ndarray, detections: List[dict],
                    maps: np.ndarray, classes: Sequence[str],
                    height: int = 256) -> List[np.ndarray]:
    """Per detection: its map over the image, with its box, class, score.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR.
        detections (List[dict]): ``bbox_xyxy`` (image pixels), ``label``,
            ``score``.
        maps (np.ndarray): ``(N, H, W)`` maps in [0, 1].
        classes (Sequence[str]): Class names.
        height (int): Panel height in pixels. Defaults to 256.

    Returns:
        List[np.ndarray]: ``(height, W', 3)`` uint8 BGR panels.
    """
    scale = height / image.shape[0]
    size = (max(1, round(image.shape[1] * scale)), height)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    panels = []
    for det, saliency in zip(detections, maps):
        heat = overlay(small, cv2.resize(saliency, size))
        det = dict(det, bbox_xyxy=[v * scale for v in det['bbox_xyxy']])
        panels.append(draw_detections(heat, [det], classes))
    return panels


def saliency_grid(panels: List[np.ndarray], per_row: int = 4,
                  gap: int = 4) -> np.ndarray:
    """Panels of equal height laid out ``per_row`` to a row.

    Args:
        panels (List[np.ndarray]): ``(h, w_i, 3)`` uint8 panels.
        per_row (int): Panels side by side. Defaults to 4.
        gap (int): White pixels between panels. Defaults to 4.

    Returns:
        np.ndarray: The grid, uint8 BGR.
    """
    if not panels:
        raise ValueError('no panels to lay out')
    width = max(p.shape[1] for p in panels)
    cells = [np.pad(p, ((0, gap), (0, width - p.shape[1] + gap), (0, 0)),
                    constant_values=255) for p in panels]
    per_row = min(per_row, len(cells))
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % per_row)
    return np.vstack([np.hstack(cells[i:i + per_row])
                      for i in range(0, len(cells), per_row)])
