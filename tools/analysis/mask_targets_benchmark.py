"""Bitmap vs polygon instance masks: pipeline ops and Mask R-CNN targets.

``LoadAnnotations(with_mask=True, poly2mask=False)`` keeps COCO polygons as
``PolygonMasks``; the default rasterises them to full-image ``BitmapMasks``.
This times what changes: resize + flip in the pipeline and the 28x28 mask
targets of the mask head (``crop_and_resize``), and reports the IoU of the
two kinds of targets. Times are CPU time of this process (run it with
OMP_NUM_THREADS=1 on a shared machine). Example::

    python tools/analysis/mask_targets_benchmark.py --instances 20 --rois 128
"""
import argparse
import json
import time

import numpy as np
from mmdet.structures.mask import PolygonMasks


def polygons(num: int, hw, seed: int = 0) -> PolygonMasks:
    rng = np.random.RandomState(seed)
    h, w = hw
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    polys = []
    for _ in range(num):
        r = rng.uniform(0.03, 0.1) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        polys.append([np.stack([cx + r * np.cos(angles),
                                cy + r * np.sin(angles)], 1).ravel()])
    return PolygonMasks(polys, h, w)


def timed(fn, repeats: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--instances', type=int, default=20)
    parser.add_argument('--rois', type=int, default=128)
    parser.add_argument('--img-size', type=int, nargs=2, default=[480, 640])
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    poly = polygons(args.instances, args.img_size)
    masks = dict(bitmap=poly.to_bitmap(), polygon=poly)
    boxes = poly.get_bboxes('hbox').tensor.numpy()
    inds = np.arange(args.rois) % args.instances
    rois = boxes[inds]
    out = dict(setup=vars(args))
    targets = {}
    new_hw = (args.img_size[0] * 5 // 4, args.img_size[1] * 5 // 4)
    for name, m in masks.items():
        out[f'{name}_resize_flip_ms'] = timed(
            lambda m=m: m.resize(new_hw).flip('horizontal'), args.repeats)
        out[f'{name}_targets_ms'] = timed(
            lambda m=m: m.crop_and_resize(rois, (28, 28), inds).to_ndarray(),
            args.repeats)
        targets[name] = m.crop_and_resize(rois, (28, 28),
                                          inds).to_ndarray() > 0.5
    a, b = targets['bitmap'], targets['polygon']
    out['target_iou'] = float((a & b).sum() / max((a | b).sum(), 1))
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
