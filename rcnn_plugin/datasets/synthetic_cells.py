"""A small deterministic blood-smear-like dataset for the demo and tests.

:func:`make_synthetic_cells` draws light smear backgrounds with three kinds
of object, mimicking BCCD at a smaller size:

- ``rbc``: pink discs with a pale centre, many per image;
- ``wbc``: large pale-violet cells with a dark lobed nucleus, 0-2 per image;
- ``platelet``: small dark-violet blobs, 0-4 per image.

Objects do not overlap, so each box is unambiguous. Boxes are written in
COCO format (``x, y, w, h`` in absolute pixels). The same seed gives the
same files on every machine.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .proposals import StrictProposalsMixin

CLASSES = ('rbc', 'wbc', 'platelet')
# class -> (min radius, max radius, min count, max count), in pixels at 320.
_SPECS = {
    'rbc': (13, 20, 4, 10),
    'wbc': (24, 32, 0, 2),
    'platelet': (6, 9, 0, 4),
}


@DATASETS.register_module()
class SyntheticCellsDataset(StrictProposalsMixin, CocoDataset):
    """COCO-format synthetic smears written by :func:`make_synthetic_cells`.
    """

    METAINFO = {
        'classes': CLASSES,
        'palette': [(220, 20, 60), (0, 82, 204), (255, 179, 0)]
    }


def _place(rng: np.random.Generator, radius: int, size: int,
           placed: List[Tuple[float, float, float]]) -> Tuple[float, float]:
    """Pick a centre that keeps a disc of ``radius`` clear of the others."""
    for _ in range(100):
        cx, cy = rng.uniform(radius + 1, size - radius - 1, 2)
        if all((cx - x)**2 + (cy - y)**2 > (radius + r + 2)**2
               for x, y, r in placed):
            return cx, cy
    return -1.0, -1.0


def _draw(img: np.ndarray, name: str, cx: float, cy: float, r: int,
          rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """Draw one object; return its box ``x1, y1, x2, y2`` (inclusive)."""
    ax = int(r)
    ay = int(max(3, round(r * rng.uniform(0.8, 1.0))))
    angle = float(rng.uniform(0, 180))
    c = (int(round(cx)), int(round(cy)))
    if name == 'rbc':
        cv2.ellipse(img, c, (ax, ay), angle, 0, 360, (150, 120, 225), -1)
        cv2.ellipse(img, c, (ax // 2, ay // 2), angle, 0, 360,
                    (185, 170, 240), -1)
    elif name == 'wbc':
        cv2.ellipse(img, c, (ax, ay), angle, 0, 360, (215, 185, 200), -1)
        for _ in range(3):  # a lobed nucleus
            off = rng.uniform(-0.35, 0.35, 2) * r
            lobe = int(r * rng.uniform(0.3, 0.45))
            cv2.circle(img, (int(cx + off[0]), int(cy + off[1])), lobe,
                       (140, 40, 90), -1)
    else:
        cv2.ellipse(img, c, (ax, ay), angle, 0, 360, (150, 60, 120), -1)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(mask, c, (ax, ay), angle, 0, 360, 255, -1)
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _make_image(rng: np.random.Generator,
                size: int) -> Tuple[np.ndarray, List[Dict]]:
    base = np.array([220, 225, 240], np.float32) + rng.normal(0, 6, 3)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = np.clip(base, 0, 255).astype(np.uint8)
    placed, objects = [], []
    # Large objects first so that the small ones fill the gaps.
    for name in ('wbc', 'rbc', 'platelet'):
        rmin, rmax, nmin, nmax = _SPECS[name]
        for _ in range(int(rng.integers(nmin, nmax + 1))):
            r = int(rng.integers(rmin, rmax + 1))
            cx, cy = _place(rng, r, size, placed)
            if cx < 0:
                continue
            placed.append((cx, cy, r))
            x1, y1, x2, y2 = _draw(img, name, cx, cy, r, rng)
            objects.append(dict(name=name, bbox=[x1, y1, x2 + 1, y2 + 1]))
    noise = rng.normal(0, 5, img.shape)
    img = cv2.GaussianBlur(np.clip(img + noise, 0, 255).astype(np.uint8),
                           (3, 3), 0)
    return img, objects


def make_synthetic_cells(out_dir: str,
                         num_train: int = 240,
                         num_val: int = 60,
                         img_size: int = 320,
                         seed: int = 0) -> Dict[str, str]:
    """Write the synthetic dataset in COCO format.

    Layout::

        out_dir/{train,val}/NNNNN.jpg
        out_dir/annotations/{train,val}.json

    Args:
        out_dir (str): Output folder; created if missing.
        num_train (int): Training images. Defaults to 240.
        num_val (int): Held-out images. Defaults to 60.
        img_size (int): Square image side in pixels. Defaults to 320.
        seed (int): Random seed; the output depends only on the arguments.
            Defaults to 0.

    Returns:
        dict[str, str]: Split name to annotation file path.
    """
    if img_size < 2 * _SPECS['wbc'][1] + 4:
        raise ValueError(f'img_size must be >= {2 * _SPECS["wbc"][1] + 4}, '
                         f'got {img_size}')
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    ann_files = {}
    for split, num in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        images, annotations = [], []
        for img_id in range(1, num + 1):
            img, objects = _make_image(rng, img_size)
            file_name = f'{split}/{img_id:05d}.jpg'
            cv2.imwrite(osp.join(out_dir, file_name), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=img_id, file_name=file_name,
                               width=img_size, height=img_size))
            for obj in objects:
                x1, y1, x2, y2 = obj['bbox']
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=img_id,
                    category_id=CLASSES.index(obj['name']) + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1), iscrowd=0))
        ann_files[split] = osp.join(out_dir, 'annotations', f'{split}.json')
        with open(ann_files[split], 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)
    return ann_files
