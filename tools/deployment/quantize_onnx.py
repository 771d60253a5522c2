"""int8 static post-training quantisation of an ONNX export (QDQ).

Example::

    python tools/deployment/quantize_onnx.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        --onnx work_dirs/bccd.onnx --out work_dirs/bccd.int8.onnx \
        --num-calib 32 [--graphs features bbox]

Calibrates on the first ``--num-calib`` images of the config's train split
(or ``--calib-images``). By default graphs ``features`` (backbone, neck,
RPN head) and ``bbox`` (RoI extraction, box head) are quantised; a mask
graph stays fp32 unless named. Run the result with ``tools/infer.py
--backend onnxruntime|openvino --onnx OUT``.
"""
import argparse
import json
import os
import os.path as osp
from typing import List

from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config

from rcnn_plugin.apis import (
    calibration_feeds,
    collect_images,
    dataset_image_paths,
    image_reader,
)
from rcnn_plugin.deployment.quantize import quantize_graphs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='int8 ONNX quantisation')
    parser.add_argument('config')
    parser.add_argument('--onnx', required=True, help='fp32 export')
    parser.add_argument('--out', required=True, help='int8 .onnx file')
    parser.add_argument('--num-calib', type=int, default=32)
    parser.add_argument('--calib-images', nargs='+',
                        help='images, folders or globs (default: the '
                        "config's train split)")
    parser.add_argument('--graphs', nargs='+', default=['features', 'bbox'],
                        choices=['features', 'bbox', 'mask'])
    args = parser.parse_args(argv)
    if not osp.isfile(args.onnx):
        parser.error(f'--onnx {args.onnx}: no such file (the fp32 export '
                     'of tools/deployment/export_onnx.py)')
    if osp.realpath(args.out) == osp.realpath(args.onnx):
        parser.error('--out is the fp32 export itself: the int8 graphs '
                     'would overwrite it; give another file')
    return args


def train_images(cfg: Config, config: str, num: int) -> List[str]:
    """The first ``num`` images of the config's train split; a split that
    is absent or cannot be read exits with a sentence."""
    if not cfg.get('train_dataloader'):
        raise SystemExit(f'quantize_onnx.py: error: {config} has no '
                         'train_dataloader to calibrate on; give '
                         '--calib-images (images, folders or globs)')
    try:
        return dataset_image_paths(cfg, 'train', num)
    except (OSError, ValueError) as err:  # FileNotFoundError, bad labels
        raise SystemExit(f'quantize_onnx.py: error: the train split of '
                         f'{config} cannot be read ({err}); fix it or give '
                         '--calib-images (images, folders or globs)') \
            from None


def main(argv=None) -> None:
    args = parse_args(argv)
    # before calibration: ONNX Runtime writes into it without making it
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    cfg = Config.fromfile(args.config)
    if args.calib_images:
        paths = [p for s in args.calib_images for p in collect_images(s)]
    else:
        paths = train_images(cfg, args.config, args.num_calib)
    # Files are read as the test pipeline reads them (a domain loader's
    # intensity window included), as inference will.
    read = image_reader(get_test_pipeline_cfg(cfg)[0])
    if len(paths) > args.num_calib:
        print(f'[quantize] {len(paths)} calibration images given; the first '
              f'{args.num_calib} are used (--num-calib)')
    images = [im for im in map(read, paths[:args.num_calib])
              if im is not None]
    dropped = min(len(paths), args.num_calib) - len(images)
    if dropped:  # each is logged by the reader
        print(f'[quantize] left out {dropped} calibration image(s) that do '
              'not decode')
    if not images:
        raise SystemExit('no calibration image could be read')
    try:  # an image larger than a static graph, a Fast R-CNN export,
        # class names that only absent dataset files give ...
        feeds = calibration_feeds(args.config, args.onnx, images)
        paths = quantize_graphs(args.onnx, args.out, feeds, args.graphs)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'quantize_onnx.py: error: {err}') from None
    print(f'[quantize] {len(images)} calibration images; int8 graphs '
          f'{args.graphs}; wrote {json.dumps(paths)}')


if __name__ == '__main__':
    main()
