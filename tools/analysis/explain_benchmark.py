"""Faithfulness of every saliency method and two baselines on a split.

Example::

    python tools/analysis/explain_benchmark.py CONFIG CKPT --split test \
        --max-images 50 --masks 1000 --out-dir work_dirs/explain_benchmark

For each image of the split (ground truth from the config's dataset), the
detections above ``--score-thr`` (at most ``--max-dets``) are explained by
each method; each map is scored by deletion and insertion AUC (removed
pixels take a blurred copy's values), the pointing game and the energy
pointing game (against the same-class GT box with IoU >= 0.5). A random
map and a centre Gaussian are scored on the same detections. Writes
``faithfulness.json`` (per image and summary) and ``faithfulness.md``.
See docs/interpretability.md.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np
from mmdet.registry import DATASETS

from rcnn_plugin.apis import Predictor
from rcnn_plugin.apis.explain import METHODS, Explainer
from rcnn_plugin.apis.explain.benchmark import (
    benchmark_image,
    markdown_table,
    summarise,
)
from rcnn_plugin.utils import earlier_output
from rcnn_plugin.utils.fileio import atomic_open


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Saliency faithfulness')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' "
                        "for the config's initial weights")
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'])
    parser.add_argument('--methods', nargs='+', default=list(METHODS))
    parser.add_argument('--max-images', type=int, default=50)
    parser.add_argument('--max-dets', type=int, default=5)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--layer', default='neck')
    parser.add_argument('--masks', type=int, default=1000)
    parser.add_argument('--steps', type=int, default=16,
                        help='deletion / insertion steps')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', default='outputs/explain_benchmark')
    parser.add_argument('--resume', action='store_true',
                        help="continue the out dir's faithfulness.json "
                        '(same settings): its images are kept, not re-run')
    parser.add_argument('--overwrite', action='store_true',
                        help="start again over the out dir's "
                        'faithfulness.json (without this or --resume an '
                        'existing one is an error, not lost)')
    return parser.parse_args(argv)


def ground_truth(info: dict):
    """``(G, 4)`` boxes and ``(G,)`` labels of a data info, ignored left out.

    Args:
        info (dict): ``dataset.get_data_info(i)``.

    Returns:
        tuple: Boxes (original pixels) and labels.
    """
    inst = [i for i in info.get('instances', []) if not i.get('ignore_flag')]
    boxes = np.array([i['bbox'] for i in inst], np.float32).reshape(-1, 4)
    return boxes, np.array([i['bbox_label'] for i in inst], np.int64)


def run(args: argparse.Namespace) -> dict:
    """Benchmark; write ``faithfulness.json`` / ``.md``; the summary.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        dict: ``table`` (per method) and ``images``.
    """
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown or args.max_images < 1 or args.steps < 1:
        raise ValueError(f'--methods must be among {", ".join(METHODS)} '
                         f'(got {unknown}); --max-images and --steps >= 1')
    if args.resume and args.overwrite:
        raise ValueError('--resume and --overwrite exclude each other')
    per_image, files, empty = _resumed(args) if args.resume else _fresh(args)
    predictor = Predictor(
            args.config,
            None if args.checkpoint == 'none' else args.checkpoint,
            args.device)
    cfg = predictor.inferencer.cfg
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    try:
        explainers = {m: Explainer(
            predictor.model, cfg, method=m, layer=args.layer,
            score_thr=args.score_thr, max_dets=args.max_dets,
            masks=args.masks, seed=args.seed) for m in args.methods}
    except TypeError as err:  # not a two-stage detector: the config's
        raise ValueError(str(err)) from err
    total = min(args.max_images, len(dataset))
    os.makedirs(args.out_dir, exist_ok=True)
    unreadable = []  # re-read on --resume: never in files
    for i in range(total):
        info = dataset.get_data_info(i)
        if info['img_path'] in files:
            continue
        image = predictor.read(info['img_path'])
        if image is None:
            print(f"[{i + 1}/{total}] {info['img_path']}: unreadable, "
                  'skipped')
            unreadable.append(info['img_path'])
            continue
        start = time.perf_counter()
        result = benchmark_image(explainers, image, *ground_truth(info),
                                 steps=args.steps, seed=args.seed)
        dets = len(next(iter(result.values()))['rows'])
        if not dets:
            empty.append(info['img_path'])
        per_image.append(result)
        files.append(info['img_path'])
        print(f"[{i + 1}/{total}] {osp.basename(info['img_path'])}: "
              f'{dets} detections >= {args.score_thr}, '
              f'{time.perf_counter() - start:.1f} s (maps: '
              + ', '.join(f"{m} {r['seconds']:.1f} s"
                          for m, r in result.items()) + ')', flush=True)
        # Written after every image, so an interrupted run keeps its rows.
        _write(args, per_image, files, empty, unreadable, complete=False)
    return _write(args, per_image, files, empty, unreadable, complete=True)


def _settings(args) -> dict:
    return dict(config=args.config, checkpoint=args.checkpoint,
                split=args.split, seed=args.seed, steps=args.steps,
                masks=args.masks, layer=args.layer, canvas='blur',
                score_thr=args.score_thr, max_dets=args.max_dets,
                methods=list(args.methods))


def _fresh(args):
    """Empty results; an error if the out dir already holds some and
    ``--overwrite`` was not given (a rerun would lose them)."""
    error = None if args.overwrite else earlier_output(
        osp.join(args.out_dir, 'faithfulness.json'), resumable=True)
    if error:
        raise ValueError(error)
    return [], [], []


def _resumed(args):
    """Per-image results, files and image-without-detection list of the
    out dir's ``faithfulness.json``; an error if its settings differ."""
    path = osp.join(args.out_dir, 'faithfulness.json')
    if not osp.isfile(path):
        return [], [], []
    with open(path) as f:
        old = json.load(f)
    diff = {k: (old.get(k), v) for k, v in _settings(args).items()
            if old.get(k) != v}
    if diff:
        raise ValueError(f'--resume: {path} was written with other settings '
                         f'(key: (file, now)): {diff}')
    images = old['images']
    print(f'[resume] {len(images)} image(s) kept from {path}')
    return ([{k: v for k, v in im.items() if k != 'file'} for im in images],
            [im['file'] for im in images], list(old['without_detections']))


def _write(args, per_image, files, empty, unreadable,
           complete: bool) -> dict:
    table = summarise(per_image)
    out = dict(_settings(args), complete=complete, table=table,
               without_detections=empty, unreadable=unreadable,
               images=[dict(file=f, **r) for f, r in zip(files, per_image)])
    path = osp.join(args.out_dir, 'faithfulness.json')
    with atomic_open(path) as f:  # a kill mid-write keeps the old
        json.dump(out, f, indent=1)
    with open(osp.join(args.out_dir, 'faithfulness.md'), 'w') as f:
        f.write(markdown_table(table))
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        out = run(args)
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f'explain_benchmark.py: error: {err}', file=sys.stderr)
        sys.exit(2)
    print(markdown_table(out['table']), end='')
    print(f"{len(out['images'])} images, "
          f"{len(out['without_detections'])} without a detection, "
          f"{len(out['unreadable'])} unreadable (skipped; listed in "
          f'faithfulness.json); outputs in {args.out_dir}')


if __name__ == '__main__':
    main()
