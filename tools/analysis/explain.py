"""Per-detection saliency maps of a Faster / Mask R-CNN.

Examples::

    python tools/analysis/explain.py CONFIG CKPT data/smears/ --out-dir out
    python tools/analysis/explain.py CONFIG CKPT 'data/*.jpg' \
        --method drise --masks 2000 --seed 1 --classes WBC
    python tools/analysis/explain.py CONFIG CKPT img.jpg --method gradcam \
        --layer neck.fpn_convs.1

Writes to ``--out-dir``: ``<stem>.png`` (one panel per detection: its map
over the image, with its box, class and score, laid out as a grid),
``<stem>.npy`` (``(N, H, W)`` float32 maps in [0, 1]) and ``index.json``
(per image its detections and files; images without a detection above
``--score-thr`` and files that do not decode are logged and counted).
See docs/interpretability.md.
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np

from rcnn_plugin.apis import Predictor, collect_images, output_names
from rcnn_plugin.apis.explain import (
    METHODS,
    Explainer,
    saliency_grid,
    saliency_panels,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Saliency per detection')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' "
                        "for the config's initial weights")
    parser.add_argument('source', help='image, folder or glob')
    parser.add_argument('--method', default='gradcam',
                        help=f'one of {", ".join(METHODS)}')
    parser.add_argument('--layer', default='neck',
                        help="hooked module for the CAM methods: 'neck' "
                        '(all FPN levels at stride 8) or one level, e.g. '
                        'neck.fpn_convs.1')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--classes', nargs='+', help='explain these only')
    parser.add_argument('--max-dets', type=int, default=10,
                        help='detections explained per image')
    parser.add_argument('--masks', type=int, default=1000,
                        help='D-RISE mask budget')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir',
                        help='default: outputs/explain/<method>, so maps of '
                        'another method are not overwritten')
    args = parser.parse_args(argv)
    args.out_dir = args.out_dir or osp.join('outputs', 'explain',
                                            args.method)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Refuse a bad method, mask budget or count before loading a model.

    Args:
        args (argparse.Namespace): Parsed arguments.
    """
    if args.method not in METHODS:
        raise ValueError(f'unknown method {args.method!r}; valid methods: '
                         f'{", ".join(METHODS)}')
    if args.method == 'drise' and args.masks <= 0:
        raise ValueError(f'D-RISE needs a mask budget > 0 (--masks), got '
                         f'{args.masks}')
    if args.max_dets < 1:
        raise ValueError(f'--max-dets must be >= 1, got {args.max_dets}')
    collect_images(args.source)  # no image: FileNotFoundError


def explain_all(args: argparse.Namespace, explainer: Explainer,
                predictor: Predictor) -> dict:
    """Explain every image of ``args.source``; write outputs; the index.

    Args:
        args (argparse.Namespace): Parsed arguments.
        explainer (Explainer): The configured explainer.
        predictor (Predictor): The model's predictor (its class names,
            and how its test pipeline reads a file).

    Returns:
        dict: The index written to ``index.json``.
    """
    classes = predictor.classes
    os.makedirs(args.out_dir, exist_ok=True)
    images, skipped, empty = [], [], []
    paths = collect_images(args.source)
    # x.jpg and x.png (or a/x.jpg and b/x.jpg) keep their own outputs.
    for path, stem in zip(paths, output_names(paths, stem=True)):
        image = predictor.read(path)
        if image is None:
            skipped.append(path)
            continue
        result = explainer.explain(image)
        entry = dict(file=path, width=image.shape[1], height=image.shape[0],
                     seconds=round(result.seconds, 3), detections=[
                         dict(d, class_name=classes[d['label']])
                         for d in result.detections])
        if not result.detections:
            print(f'{path}: no detection with score >= {args.score_thr}'
                  + (f' of the classes {args.classes}' if args.classes
                     else ''))
            empty.append(path)
        else:
            os.makedirs(osp.dirname(osp.join(args.out_dir, stem)),
                        exist_ok=True)
            np.save(osp.join(args.out_dir, f'{stem}.npy'), result.maps)
            grid = saliency_grid(saliency_panels(
                image, result.detections, result.maps, classes))
            cv2.imwrite(osp.join(args.out_dir, f'{stem}.png'), grid)
            entry.update(png=f'{stem}.png', maps=f'{stem}.npy')
        images.append(entry)
    index = dict(method=args.method, layer=args.layer, masks=args.masks,
                 seed=args.seed, score_thr=args.score_thr, classes=classes,
                 processed=len(images), skipped=skipped,
                 without_detections=empty, images=images)
    with open(osp.join(args.out_dir, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
    return index


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        check_args(args)
        predictor = Predictor(
            args.config,
            None if args.checkpoint == 'none' else args.checkpoint,
            args.device)
        classes = predictor.classes
        keep = None
        if args.classes:
            unknown = sorted(set(args.classes) - set(classes))
            if unknown:
                raise ValueError(f'--classes: unknown {unknown}; the model '
                                 f'has {classes}')
            keep = [classes.index(c) for c in args.classes]
        try:
            explainer = Explainer(
                predictor.model, predictor.inferencer.cfg,
                method=args.method, layer=args.layer,
                score_thr=args.score_thr, classes=keep,
                max_dets=args.max_dets, masks=args.masks, seed=args.seed)
        except TypeError as err:  # not a two-stage detector: the config's
            raise ValueError(str(err)) from err
        index = explain_all(args, explainer, predictor)
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f'explain.py: error: {err}', file=sys.stderr)
        sys.exit(2)
    print(f"{index['processed']} images explained with {args.method}, "
          f"{len(index['without_detections'])} without a detection >= "
          f"{args.score_thr}, {len(index['skipped'])} did not decode; "
          f'outputs in {args.out_dir}')


if __name__ == '__main__':
    main()
