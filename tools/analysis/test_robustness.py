"""Corruption benchmark (Michaelis et al. 2019): P, mPC and rPC.

Evaluates a checkpoint on the clean test images and on each corruption at
each severity (seeded: the same numbers every run), with the config's own
evaluator, and writes ``robustness.json``, ``robustness.csv``,
``summary.csv`` and a heatmap (docs/robustness.md). Finished conditions are
kept under ``OUT_DIR/conditions`` and skipped when run again.

Example::

    python tools/analysis/test_robustness.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        work_dirs/bccd/epoch_8.pth --corruptions noise fog --max-images 50
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

import rcnn_plugin  # noqa: F401  (registers SeededCorrupt, safe loading)
from rcnn_plugin.apis.robustness import (
    ConditionStore,
    RobustnessSweep,
    StaleResultsError,
    prepare_config,
    run_fingerprint,
    run_sweep,
)
from rcnn_plugin.datasets.transforms.corruptions import (
    check_severities,
    patch_imagecorruptions,
    resolve_corruptions,
)
from rcnn_plugin.evaluation.robustness import write_outputs
from rcnn_plugin.utils import merge_cfg_options


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Corruption benchmark: P, mPC and rPC of a checkpoint')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--corruptions', nargs='+', default=['benchmark'],
        help='corruption names or groups: benchmark (the 15), holdout, '
        'noise, blur, weather, digital, all')
    parser.add_argument('--severities', nargs='+', type=int,
                        default=[1, 2, 3, 4, 5], help='0 (clean) to 5')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the corruptions')
    parser.add_argument('--split', choices=['val', 'test'], default='test',
                        help='dataloader and evaluator of this split')
    parser.add_argument('--max-images', type=int,
                        help='evaluate only the first N images (quick runs)')
    parser.add_argument('--metric',
                        help='metric of the heatmap (default: the first '
                        'overall one, e.g. coco/bbox_mAP)')
    parser.add_argument('--no-per-class', action='store_true',
                        help='do not add per-class box AP50')
    parser.add_argument('--work-dir', '--out-dir', dest='out_dir',
                        help='output folder (default '
                        'work_dirs/robustness_<config name>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value')
    args = parser.parse_args()
    try:
        args.corruptions = resolve_corruptions(args.corruptions)
        args.severities = sorted(set(check_severities(args.severities)))
        patch_imagecorruptions()
    except (ValueError, ImportError) as err:
        parser.error(str(err))
    if args.max_images is not None and args.max_images < 1:
        parser.error(f'--max-images must be >= 1, got {args.max_images}')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} does not exist')
    if args.out_dir is None:
        stem = osp.splitext(osp.basename(args.config))[0]
        args.out_dir = osp.join('work_dirs', f'robustness_{stem}')
    return args


def fail(message: str) -> None:
    print(f'test_robustness.py: error: {message}', file=sys.stderr)
    sys.exit(2)


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    try:
        cfg = prepare_config(cfg, args.checkpoint, args.split, args.out_dir)
        sweep = RobustnessSweep(cfg, args.seed, args.max_images,
                                not args.no_per_class)
        info = dict(config=osp.abspath(args.config),
                    checkpoint=osp.abspath(args.checkpoint), seed=args.seed,
                    split=args.split, max_images=args.max_images,
                    cfg_options=args.cfg_options or {})
        store = ConditionStore(args.out_dir, run_fingerprint(
            cfg, args.checkpoint, args.seed, args.max_images,
            not args.no_per_class), info)
    except (ValueError, StaleResultsError) as err:
        fail(str(err))
    conditions = [(None, 0)] + [(c, s) for c in args.corruptions
                                for s in args.severities if s > 0]
    subset = ('all images' if args.max_images is None else
              f'the first {args.max_images} images only (a subset: not '
              'comparable with a full run)')
    print(f'[robustness] seed {args.seed}; {len(args.corruptions)} '
          f'corruptions x severities {args.severities}; {len(conditions)} '
          f'conditions with clean; {args.split} split, {subset}; out '
          f'{args.out_dir}', flush=True)
    try:
        results = run_sweep(sweep, store, conditions,
                            log=lambda line: print(line, flush=True))
    except ValueError as err:  # a checkpoint of another config
        fail(str(err))
    sweep.close()
    per_class = None if args.no_per_class else (
        'per_class/bbox_AP50: box AP at IoU 0.5, COCO 101-point')
    info.update(corruptions=args.corruptions, severities=args.severities,
                classes=sweep.classes(), per_class_source=per_class,
                metric=args.metric)
    try:
        out = write_outputs(args.out_dir, info, results)
    except ValueError as err:  # an unknown --metric
        fail(str(err))
    print_summary(out, subset, args.out_dir)


def _num(value) -> str:
    return '-' if value is None else f'{value:.4f}'


def print_summary(out: dict, subset: str, out_dir: str) -> None:
    print(f'[robustness] {subset}; P = clean, mPC = mean over the '
          'corruptions and severities 1-5, rPC = mPC / P')
    for key, s in out['summary'].items():
        print(f'  {key}: P {_num(s["P"])} mPC {_num(s["mPC"])} '
              f'rPC {_num(s["rPC"])}')
    missing = out['classes_without_numbers']
    if missing:
        print(f'[robustness] no per-class number for: {", ".join(missing)} '
              '(no ground truth in the evaluated images, or --no-per-class)')
    if out['per_class_source'] and any('segm' in k for k in out['summary']):
        print('[robustness] per-class numbers are box AP50; per-class mask '
              'AP is not computed')
    print(f'[robustness] wrote robustness.json, robustness.csv, summary.csv '
          f'and the heatmap to {out_dir}')


if __name__ == '__main__':
    main()
