"""Time dataset indexing: native YOLO / LabelMe files vs mmdet's CocoDataset.

Generates N YOLO label files and N LabelMe JSON files (5 objects each, the
LabelMe ones half rectangles, half polygons) in a temporary folder, plus the
equivalent COCO JSON of each (written by our COCO writer from the same
data), then times ``full_init`` of our datasets and of mmdet's
``CocoDataset`` on the COCO files, alternating, in this one process, and
reports the median of ``--repeats`` runs. All images are hard links to one
tiny PNG, so YOLO (which reads each image header for its size) pays the
file-system cost it would pay on real data.

Usage::

    python tools/analysis/benchmark_indexing.py [--num 10000] [--repeats 3]
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import numpy as np
from mmdet.datasets import CocoDataset
from mmengine.logging import MMLogger
from PIL import Image

from rcnn_plugin.datasets import LabelMeDataset, YOLODataset, dataset_to_coco

CLASSES = ('car', 'person', 'bike')
W, H = 640, 480


def _boxes(rng, n=5):
    xy = rng.uniform(0, 0.7, (n, 2))
    wh = rng.uniform(0.05, 0.3, (n, 2))
    return np.concatenate([xy, xy + wh], 1), rng.integers(0, 3, n)


def make_files(root: str, num: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for sub in ('yolo/images', 'yolo/labels', 'labelme'):
        os.makedirs(osp.join(root, sub))
    tiny = osp.join(root, 'tiny.png')
    Image.new('RGB', (W, H)).save(tiny)
    with open(osp.join(root, 'yolo', 'obj.names'), 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    for i in range(num):
        name = f'{i:06d}'
        os.link(tiny, osp.join(root, 'yolo', 'images', name + '.png'))
        os.link(tiny, osp.join(root, 'labelme', name + '.png'))
        boxes, labels = _boxes(rng)
        with open(osp.join(root, 'yolo', 'labels', name + '.txt'), 'w') as f:
            for (x1, y1, x2, y2), c in zip(boxes, labels):
                f.write(f'{c} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} '
                        f'{x2 - x1:.6f} {y2 - y1:.6f}\n')
        shapes = []
        for k, ((x1, y1, x2, y2), c) in enumerate(zip(boxes * [W, H, W, H],
                                                      labels)):
            pts = [[x1, y1], [x2, y2]] if k % 2 else [
                [x1, y1], [x2, y1], [x2, y2], [(x1 + x2) / 2, y2]]
            shapes.append(dict(label=CLASSES[c], points=pts, group_id=None,
                               shape_type='rectangle' if k % 2
                               else 'polygon', flags={}))
        with open(osp.join(root, 'labelme', name + '.json'), 'w') as f:
            json.dump(dict(version='5.4.1', flags={}, shapes=shapes,
                           imagePath=name + '.png', imageData=None,
                           imageHeight=H, imageWidth=W), f)


def builders(root: str) -> dict:
    yolo = dict(data_root=osp.join(root, 'yolo'), pipeline=[],
                data_prefix=dict(img='images', ann='labels'))
    labelme = dict(data_root=osp.join(root, 'labelme'), pipeline=[],
                   metainfo=dict(classes=CLASSES))
    return {
        'YOLO txt (YOLODataset)': lambda: YOLODataset(**yolo),
        'COCO of YOLO (CocoDataset)': lambda: CocoDataset(
            data_root=osp.join(root, 'yolo'), ann_file='../yolo.json',
            data_prefix=dict(img=''), pipeline=[],
            metainfo=dict(classes=CLASSES)),
        'LabelMe JSON (LabelMeDataset)': lambda: LabelMeDataset(**labelme),
        'COCO of LabelMe (CocoDataset)': lambda: CocoDataset(
            data_root=osp.join(root, 'labelme'), ann_file='../labelme.json',
            data_prefix=dict(img=''), pipeline=[],
            metainfo=dict(classes=CLASSES)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num', type=int, default=10000)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)
    MMLogger.get_instance('mmengine', log_level='WARNING')
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        make_files(root, args.num)
        build = builders(root)
        for key, fmt in (('YOLO txt (YOLODataset)', 'yolo'),
                         ('LabelMe JSON (LabelMeDataset)', 'labelme')):
            dataset_to_coco(build[key](), osp.join(root, fmt + '.json'),
                            img_root=osp.join(root, fmt), progress=False)
        print(f'generated {args.num} YOLO + {args.num} LabelMe files and '
              f'2 COCO JSON in {time.perf_counter() - t0:.1f} s')
        times = {k: [] for k in build}
        for _ in range(args.repeats):
            for key, make in build.items():
                t = time.perf_counter()
                ds = make()
                times[key].append(time.perf_counter() - t)
                assert len(ds) == args.num, (key, len(ds))
    print(f'{"dataset":<32}{"median s":>10}{"min s":>8}  ({args.repeats} '
          f'runs, {args.num} images, {5 * args.num} objects)')
    for key, ts in times.items():
        print(f'{key:<32}{statistics.median(ts):>10.3f}{min(ts):>8.3f}')
    keys = list(times)
    for ours, coco in ((keys[0], keys[1]), (keys[2], keys[3])):
        ratio = statistics.median(times[coco]) / statistics.median(
            times[ours])
        print(f'{ours}: {ratio:.2f}x the speed of CocoDataset on the '
              'same data')
    return 0


if __name__ == '__main__':
    sys.exit(main())
