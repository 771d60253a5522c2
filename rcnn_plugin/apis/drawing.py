"""Draw detections on a BGR image with OpenCV (fast enough for video)."""
from typing import Dict, List, Sequence

import cv2
import numpy as np


def class_colour(label: int) -> tuple:
    """A stable, distinct BGR colour per class index.

    Args:
        label (int): Class index.

    Returns:
        tuple: ``(b, g, r)`` ints.
    """
    hue = (label * 47) % 180
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """A copy of ``image`` as ``(H, W, 3)`` uint8 BGR, for drawing on.

    Args:
        image (np.ndarray): BGR or grey ``(H, W)`` image, uint8 or float in
            ``[0, 255]`` (what ``LoadDomainImageFromFile`` gives).

    Returns:
        np.ndarray: The converted copy.
    """
    out = image.copy()
    if out.dtype != np.uint8:  # e.g. LoadDomainImageFromFile(to_float32)
        out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    return out


def draw_detections(image: np.ndarray, dets: List[Dict],
                    classes: Sequence[str]) -> np.ndarray:
    """Boxes, labels, scores (and masks, blended) on a copy of ``image``.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR image (a grey
            ``(H, W)`` or a float one in ``[0, 255]`` is converted).
        dets (List[dict]): Detections with ``bbox_xyxy``, ``label`` and
            optionally ``score`` (ground truth has none: the class name is
            drawn alone) and ``segmentation`` (COCO RLE).
        classes (Sequence[str]): Class names indexed by label.

    Returns:
        np.ndarray: The annotated image.
    """
    out = to_bgr_uint8(image)
    for det in dets:
        colour = class_colour(det['label'])
        if 'segmentation' in det:
            from pycocotools import mask as mask_util
            mask = mask_util.decode(det['segmentation']).astype(bool)
            out[mask] = (0.5 * out[mask] + 0.5 * np.array(colour)).astype(
                np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in det['bbox_xyxy'])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        text = str(classes[det['label']])
        if det.get('score') is not None:
            text += f' {det["score"]:.2f}'
        cv2.putText(out, text, (x1, max(y1 - 4, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out
