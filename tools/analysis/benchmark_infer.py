"""Throughput of tools/infer.py against mmdet's DetInferencer, same model.

Both run end to end on the same image folder, in the same process, with
the same model object (the DetInferencer instance that tools/infer.py
wraps), interleaved round by round with the order alternating:

- ``tools/infer.py``: read with OpenCV, batched predict, draw with OpenCV,
  write annotated images and the COCO results JSON.
- ``DetInferencer``: ``inferencer(folder, batch_size, out_dir,
  no_save_pred=False)``, which writes annotated images
  (DetLocalVisualizer) and per-image JSON (``no_save_pred`` defaults to
  True in mmdet: before session 36 this arm wrote no JSON, so the ratios
  in docs/evaluation.md charge the JSON to tools/infer.py alone).

Images: the first ``--num-images`` BCCD test images (640x480) when
``../shared/datasets/bccd`` exists, else generated 640x480 smears. The
weights are the config's initialisation (no checkpoint is needed for
throughput; pass ``--checkpoint`` to use one).

The median and the best round are printed; on a shared machine the best
round is the one least disturbed by other processes.

Example (about 2-3 minutes on 2 idle CPU cores)::

    python tools/analysis/benchmark_infer.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py
"""
import argparse
import importlib.util
import os
import os.path as osp
import statistics
import tempfile
import time

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BCCD = osp.join(REPO, '..', 'shared', 'datasets', 'bccd')


def _load_infer_tool():
    spec = importlib.util.spec_from_file_location(
        'infer_tool', osp.join(REPO, 'tools', 'infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(folder: str, num: int) -> str:
    split = osp.join(BCCD, 'ImageSets', 'Main', 'test.txt')
    names = (open(split).read().split()[:num]
             if osp.isfile(split) else [])
    rng = np.random.default_rng(0)
    for i in range(num):
        if i < len(names):
            image = cv2.imread(osp.join(BCCD, 'JPEGImages',
                                        names[i] + '.jpg'))
        else:
            image = np.full((480, 640, 3), 225, np.uint8)
            for _ in range(30):
                c = tuple(int(v) for v in rng.integers(20, 460, 2))
                cv2.circle(image, c, int(rng.integers(15, 40)),
                           (120, 90, 210), -1)
        cv2.imwrite(osp.join(folder, f'{i:04d}.jpg'), image)
    return 'BCCD test' if names else 'generated'


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default='none')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    infer = _load_infer_tool()
    work = tempfile.mkdtemp(prefix='bench_infer_')
    folder = osp.join(work, 'images')
    os.makedirs(folder)
    origin = _images(folder, args.num_images)
    ckpt = None if args.checkpoint == 'none' else args.checkpoint
    predictor = infer.Predictor(args.config, ckpt, 'cpu')
    ours_args = infer.parse_args([
        args.config, args.checkpoint, folder, '--out-dir',
        osp.join(work, 'ours'), '--batch-size', str(args.batch_size),
        '--score-thr', str(args.score_thr), '--no-progress'])
    runs = dict(
        ours=lambda: infer.infer(ours_args, predictor),
        mmdet=lambda: predictor.inferencer(
            folder, batch_size=args.batch_size,
            out_dir=osp.join(work, 'mmdet'), no_save_pred=False,
            pred_score_thr=args.score_thr))
    # Warm-up on one image each (first-call allocations).
    warm = infer.parse_args([args.config, 'none',
                             osp.join(folder, '0000.jpg'), '--out-dir',
                             osp.join(work, 'warm'), '--no-progress'])
    infer.infer(warm, predictor)
    predictor.inferencer(osp.join(folder, '0000.jpg'),
                         out_dir=osp.join(work, 'warm2'))
    times = dict(ours=[], mmdet=[])
    for r in range(args.rounds):
        order = ('ours', 'mmdet') if r % 2 == 0 else ('mmdet', 'ours')
        for name in order:
            times[name].append(_time(runs[name]))
    n = args.num_images
    print(f'{n} {origin} images (640x480), batch {args.batch_size}, '
          f'{args.rounds} interleaved rounds, {args.threads} threads, '
          f'config {osp.basename(args.config)}')
    rates = {}
    for name, label in (('ours', 'tools/infer.py'),
                        ('mmdet', 'mmdet DetInferencer')):
        rates[name] = [n / t for t in times[name]]
        print(f'{label:>20}: median {statistics.median(rates[name]):.3f} '
              f'best {max(rates[name]):.3f} images/s (rounds: '
              + ', '.join(f'{v:.3f}' for v in rates[name]) + ')')
    ratio = statistics.median(rates['ours']) / statistics.median(
        rates['mmdet'])
    best = max(rates['ours']) / max(rates['mmdet'])
    print(f'tools/infer.py / DetInferencer: {ratio:.2f}x (median), '
          f'{best:.2f}x (best round)')


if __name__ == '__main__':
    main()
