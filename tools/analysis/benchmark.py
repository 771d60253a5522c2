"""Time a detector config, or compare two in one process (ABBA rounds).

Examples::

    # plugin fast path (B) against stock mmdet (A), BCCD model, 640x480
    python tools/analysis/benchmark.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        --vs configs/speed/faster-rcnn_mobilenetv2_fpn-128-tvroi_8e_bccd.py
    # one option against the same config without it
    python tools/analysis/benchmark.py CONFIG \
        --vs-cfg-options optim_wrapper.type=BF16AmpOptimWrapper
    # torch.compile of backbone + neck (B) against eager (A)
    python tools/analysis/benchmark.py CONFIG --compile --threads 2
"""
import argparse
import json
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction

from rcnn_plugin.utils import merge_cfg_options
from rcnn_plugin.utils.benchmark_runner import markdown_table, run_benchmark


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config A (the reference)')
    parser.add_argument('--vs', help='config B; B/A ratios are reported')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--img-size', type=int, nargs=2, default=[480, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--num-gts', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--parts', nargs='+',
                        default=['train', 'inference', 'pipeline'],
                        choices=['train', 'inference', 'pipeline'])
    parser.add_argument('--tiny', action='store_true',
                        help='96x128 images, batch 1, 2 rounds (smoke test)')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument(
        '--clock', choices=['wall', 'process'], default='wall',
        help="'process': CPU time of this process, for a shared CPU "
        'machine (use with --threads 1)')
    parser.add_argument('--out', help='write the result as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides for config A')
    parser.add_argument('--vs-cfg-options', nargs='+', action=DictAction,
                        help='overrides for config B (without --vs, B is '
                        'A with its --cfg-options, then these)')
    parser.add_argument(
        '--compile', nargs='?', const='inductor', metavar='BACKEND',
        help='B = A with torch.compile of the backbone and the neck '
        '(CompileBackboneNeckHook; default backend inductor)')
    return parser.parse_args()


def check_args(args: argparse.Namespace) -> None:
    """Flags that cannot run, said before any model is built."""
    bad = [f'--{k.replace("_", "-")} must be >= {low}, got {getattr(args, k)}'
           for k, low in (('rounds', 1), ('batch_size', 1), ('warmup', 0),
                          ('num_gts', 1)) if getattr(args, k) < low]
    if args.device == 'cuda' and args.clock == 'process':
        bad.append("--clock process measures this process's CPU time, not "
                   'CUDA kernels: use --clock wall with --device cuda')
    if args.device == 'cuda' and not torch.cuda.is_available():
        bad.append('--device cuda: no CUDA device is visible')
    if bad:
        raise SystemExit('benchmark.py: error: ' + '; '.join(bad))


def check_config(cfg: Config, path: str) -> None:
    """A two-stage config with one box head (its class count sets the
    synthetic ground truth)."""
    head = (cfg.model.get('roi_head') or {}).get('bbox_head')
    if not isinstance(head, dict) or 'num_classes' not in head:
        raise SystemExit(
            f'benchmark.py: error: {path} has no single model.roi_head.'
            'bbox_head with num_classes (a Faster / Mask R-CNN config; a '
            'cascade lists one head per stage)')


def cfg_b_options(args: argparse.Namespace):
    """B's overrides: ``--vs-cfg-options``, on top of A's ``--cfg-options``
    when B is A (no ``--vs``)."""
    if args.vs:
        return args.vs_cfg_options
    return {**(args.cfg_options or {}), **(args.vs_cfg_options or {})}


def load(path: str, options) -> Config:
    cfg = Config.fromfile(path)
    merge_cfg_options(cfg, options)
    check_config(cfg, path)
    return cfg


def main() -> None:
    args = parse_args()
    check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        args.img_size, args.batch_size, args.num_gts = [96, 128], 1, 3
        args.rounds, args.warmup = 2, 1
    cfg_a = load(args.config, args.cfg_options)
    cfg_b = None
    if args.vs or args.vs_cfg_options or args.compile:
        # without --vs, B is A (its options too) changed by --vs-cfg-options
        # / --compile: a ratio of one change, not of the options left out
        cfg_b = load(args.vs or args.config, cfg_b_options(args))
    if args.compile:
        cfg_b.custom_hooks = list(cfg_b.get('custom_hooks', None) or []) + [
            dict(type='CompileBackboneNeckHook', backend=args.compile)]
    result = run_benchmark(
        cfg_a, cfg_b, device=args.device, img_hw=tuple(args.img_size),
        batch_size=args.batch_size, num_gts=args.num_gts,
        rounds=args.rounds, warmup=args.warmup, parts=tuple(args.parts),
        clock=args.clock)
    result['configs'] = dict(
        A=dict(path=args.config, options=args.cfg_options),
        B=dict(path=args.vs or args.config, options=cfg_b_options(args),
               compile_backbone_neck=args.compile)
        if cfg_b is not None else None)
    print(markdown_table(result))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1, default=str)


if __name__ == '__main__':
    main()
