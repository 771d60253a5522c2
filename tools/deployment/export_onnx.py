"""Export a Faster / Mask R-CNN to ONNX and check it against PyTorch.

Example::

    python tools/deployment/export_onnx.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py best.pth \
        --out work_dirs/bccd.onnx [--dynamic] [--opset 17] \
        [--check-images img1.jpg img2.jpg]

Writes ``OUT`` (backbone, neck, RPN head), ``OUT-stem.bbox.onnx`` (RoI
extraction, box head) and, for Mask R-CNN, ``OUT-stem.mask.onnx``. Proposal
NMS and box / mask post-processing run in Python (mmdet's code) at
inference: see docs/deployment.md. The export then runs ONNX Runtime and
PyTorch on the check images (the first ``--num-check`` test images of the
config) and exits 1 when detections differ (boxes and scores compared
unrounded) or, without ``--dynamic``, when a check image is larger than
the first one, which fixes the graph's input size.
"""
import argparse
import json
import sys

import numpy as np

from rcnn_plugin.apis import (
    OnnxPredictor,
    Predictor,
    capture_input,
    collect_images,
    dataset_image_paths,
    predict_dicts,
    read_image,
    self_check,
)
from rcnn_plugin.deployment import export_onnx


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export to ONNX')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint, or 'none'")
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width')
    parser.add_argument('--check-images', nargs='+',
                        help='images, folders or globs for the self-check '
                        "(default: the config's test split)")
    parser.add_argument('--num-check', type=int, default=4)
    parser.add_argument('--min-match', type=float, default=0.95,
                        help='least match fraction of each check image')
    parser.add_argument('--backends', nargs='+', default=['onnxruntime'],
                        choices=['onnxruntime', 'openvino'])
    return parser.parse_args(argv)


def check_images(args, cfg) -> list:
    if args.check_images:
        paths = [p for src in args.check_images for p in collect_images(src)]
    else:
        try:
            paths = dataset_image_paths(cfg, 'test', args.num_check)
        except (FileNotFoundError, OSError) as err:
            print(f'[export] test split not readable ({err}); checking on '
                  'random images')
            paths = []
    images = [read_image(p) for p in paths]
    images = [im for im in images if im is not None]
    if not images:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (480, 640, 3), np.uint8)
                  for _ in range(2)]
    return images


def main(argv=None) -> int:
    args = parse_args(argv)
    ckpt = None if args.checkpoint == 'none' else args.checkpoint
    torch_pred = Predictor(args.config, ckpt, 'cpu')
    cfg = torch_pred.inferencer.cfg
    images = check_images(args, cfg)
    sample = capture_input(torch_pred, images[0])
    reference = predict_dicts(torch_pred, images)
    try:
        paths = export_onnx(torch_pred.model, cfg, args.out,
                            torch_pred.classes, sample, args.opset,
                            args.dynamic)
    except ValueError as err:
        print(f'[export] error: {err}', file=sys.stderr)
        return 2
    print(f'[export] wrote {json.dumps(paths)}')
    status = 0
    for backend in args.backends:
        onnx_pred = OnnxPredictor(args.config, args.out, backend)
        try:
            report = self_check(reference, onnx_pred, images,
                                args.min_match)
        except (RuntimeError, ValueError) as err:
            # ValueError: a check image larger than the static graph
            print(f'[export] check FAILED: {err}', file=sys.stderr)
            status = 1
            continue
        print(f"[export] check {backend} vs PyTorch on {report['images']} "
              f"images: match fraction {report['match_fraction']:.4f}, max "
              f"box diff {report['max_box_diff']:.4f} px, max score diff "
              f"{report['max_score_diff']:.2e}")
    return status


if __name__ == '__main__':
    sys.exit(main())
