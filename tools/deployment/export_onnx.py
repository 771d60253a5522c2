"""Export a Faster / Mask / Fast R-CNN to ONNX and check it against PyTorch.

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
the first one, which fixes the graph's input size. A Fast R-CNN (no RPN)
exports no RPN outputs; its check runs on the test split's images with the
proposals of its ``proposal_file``, as ``tools/test.py`` reads them.
"""
import argparse
import json
import os
import os.path as osp
import sys

import numpy as np
from mmdet.utils import get_test_pipeline_cfg

from rcnn_plugin.apis import (
    OnnxPredictor,
    Predictor,
    capture_input,
    collect_images,
    dataset_samples,
    image_reader,
    predict_dicts,
    self_check,
)
from rcnn_plugin.datasets import ProposalFileError
from rcnn_plugin.deployment import export_onnx, require_backend


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
    args = parser.parse_args(argv)
    if args.num_check < 1:
        parser.error(f'--num-check must be >= 1, got {args.num_check}')
    if not 0 <= args.min_match <= 1:
        parser.error(f'--min-match must be in [0, 1], got {args.min_match}')
    if args.checkpoint != 'none' and '://' not in args.checkpoint and \
            not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint file not found: {args.checkpoint} '
                     "('none' exports random weights)")
    for backend in args.backends:  # before writing anything
        try:
            require_backend(backend)
        except ImportError as err:
            parser.error(f'--backends {backend}: {err}')
    return args


def _random_boxes(rng, height: int, width: int, num: int = 50):
    """``(num, 4)`` random boxes ``x1, y1, x2, y2`` inside the image."""
    xy = rng.uniform(0, 0.8, (num, 2)) * (width, height)
    wh = rng.uniform(0.05, 0.5, (num, 2)) * (width, height)
    return np.concatenate([xy, np.minimum(xy + wh, (width, height))],
                          axis=1).astype(np.float32)


def check_images(args, cfg, needs_proposals: bool = False) -> tuple:
    """Check images and, for Fast R-CNN (``needs_proposals``), their
    proposals from the test split's proposal file (None otherwise)."""
    if args.check_images:
        if needs_proposals:
            raise ValueError(
                '--check-images: this Fast R-CNN needs proposals for each '
                'check image; leave --check-images out to check on the '
                "test split with its proposal_file")
        samples = [dict(img_path=p) for src in args.check_images
                   for p in collect_images(src)]
    else:
        try:
            samples = dataset_samples(cfg, 'test', args.num_check)
        except (FileNotFoundError, OSError, ProposalFileError) as err:
            print(f'[export] test split not readable ({err}); checking on '
                  'random images' + (' with random proposals'
                                     if needs_proposals else ''))
            samples = []
    if needs_proposals and any('proposals' not in s for s in samples):
        print('[export] the test split has no proposal_file; checking on '
              'random images with random proposals')
        samples = []
    images, proposals, unreadable = [], [], []
    read = image_reader(get_test_pipeline_cfg(cfg)[0])
    for sample in samples:
        image = read(sample['img_path'])
        if image is None:
            unreadable.append(sample['img_path'])
            continue
        images.append(image)
        proposals.append(sample.get('proposals'))
    if unreadable:
        print(f'[export] skipped {len(unreadable)} check image(s) that do '
              f'not decode: {unreadable[:5]}')
    if not images and args.check_images:
        raise ValueError('--check-images: none of the images decodes, so '
                         'nothing would be checked')
    if not images:
        if samples:
            print('[export] no test image decodes; checking on random '
                  'images')
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (480, 640, 3), np.uint8)
                  for _ in range(2)]
        proposals = [_random_boxes(rng, 480, 640) for _ in images]
    return images, proposals if needs_proposals else None


def main(argv=None) -> int:
    args = parse_args(argv)
    ckpt = None if args.checkpoint == 'none' else args.checkpoint
    # before the slow reference run: torch.onnx.export does not make it
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    try:
        # FileNotFoundError: class names only the absent dataset files give
        torch_pred = Predictor(args.config, ckpt, 'cpu')
        cfg = torch_pred.inferencer.cfg
        images, proposals = check_images(args, cfg,
                                         torch_pred.needs_proposals)
        sample = capture_input(torch_pred, images[0],
                               None if proposals is None else proposals[0])
        reference = predict_dicts(torch_pred, images, proposals=proposals)
        paths = export_onnx(torch_pred.model, cfg, args.out,
                            torch_pred.classes, sample, args.opset,
                            args.dynamic)
    except (FileNotFoundError, ValueError) as err:
        print(f'[export] error: {err}', file=sys.stderr)
        return 2
    print(f'[export] wrote {json.dumps(paths)}')
    status = 0
    for backend in args.backends:
        try:
            onnx_pred = OnnxPredictor(args.config, args.out, backend)
            report = self_check(reference, onnx_pred, images,
                                args.min_match, proposals)
        except (FileNotFoundError, RuntimeError, ValueError) as err:
            # ValueError: a check image larger than the static graph;
            # FileNotFoundError: class names only absent dataset files give
            print(f'[export] check FAILED: {err}', file=sys.stderr)
            status = 1
            continue
        print(f"[export] check {backend} vs PyTorch on {report['images']} "
              f"images ({report['images_with_detections']} with "
              f"detections): match fraction {report['match_fraction']:.4f}, "
              f"max box diff {report['max_box_diff']:.4f} px, max score "
              f"diff {report['max_score_diff']:.2e}")
    return status


if __name__ == '__main__':
    sys.exit(main())
