"""Test (and evaluate) a trained detector (same flags as mmdet's script).

Example::

    python tools/test.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        work_dirs/.../epoch_8.pth --out results.pkl --show-dir vis
    # slice-aided evaluation (SAHI; COCO AP incl. AP_small)
    python tools/test.py CONFIG CKPT --slice 512 --overlap 0.2
    # test-time augmentation (the config's tta_model / tta_pipeline)
    python tools/test.py CONFIG CKPT --tta
"""
import argparse
import os.path as osp
import sys

import torch
from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from rcnn_plugin.apis.slicing import (
    NOT_SLICED_WITHOUT_RPN,
    add_slice_args,
    check_slice_args,
)
from rcnn_plugin.apis.tta import apply_tta
from rcnn_plugin.config_doctor.context import dataset_classes, detector_cfg
from rcnn_plugin.engine import check_checkpoint_fits
from rcnn_plugin.engine.hooks import use_domain_visualization
from rcnn_plugin.utils import (
    add_common_args,
    close_distributed,
    load_config,
    prepare_distributed,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a .pkl file')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='save painted images to work_dir/timestamp/SHOW_DIR')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_model and "
        "tta_pipeline, else mmdet's horizontal-flip default")
    add_slice_args(parser)
    add_common_args(parser)
    args = parser.parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end with .pkl or .pickle, got {args.out}')
    if args.slice is not None and args.tta:
        parser.error('--tta and --slice do not combine; choose one')
    if args.slice is not None:
        try:
            check_slice_args(args.slice, args.overlap)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def config_test_classes(cfg):
    """The test split's classes as the config names them (None if
    unknown)."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset')
    return dataset_classes(dataset) if isinstance(dataset, dict) else None


def main() -> None:
    args = parse_args()
    setup_cache_size_limit_of_dynamo()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.slice is not None:  # slice-aided evaluation (SAHI)
        det = detector_cfg(cfg.model)[1]
        if det.get('roi_head') and not det.get('rpn_head'):
            sys.exit(f'tools/test.py: error: --slice: '
                     f'{NOT_SLICED_WITHOUT_RPN}')
        cfg.test_cfg = dict(
            type='SlicedTestLoop', slice_size=args.slice,
            overlap=args.overlap, merge=args.slice_merge,
            match_metric=args.slice_match,
            full_image=args.slice_full)
    if args.tta:
        try:
            apply_tta(cfg)
        except ValueError as exc:
            sys.exit(f'tools/test.py: error: {exc}')
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
        use_domain_visualization(cfg)  # 16-bit / windowed images
    local = '://' not in args.checkpoint
    if local and not osp.isfile(args.checkpoint):
        sys.exit(f'tools/test.py: error: checkpoint file not found: '
                 f'{args.checkpoint}')
    prepare_distributed(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    # FlexibleRunner builds its model in test(): nothing to compare yet.
    if local and isinstance(runner.model, torch.nn.Module):
        try:
            check_checkpoint_fits(runner.model, args.checkpoint,
                                  config_test_classes(cfg))
        except ValueError as exc:
            sys.exit(f'tools/test.py: error: {exc}')
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    runner.test()
    del runner  # its DDP reducer holds the process group
    close_distributed()


if __name__ == '__main__':
    main()
