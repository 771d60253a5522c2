"""Train a detector with MMEngine's Runner (same flags as mmdet's script).

Example::

    python tools/train.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py
"""
import argparse
import os.path as osp

import torch
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from rcnn_plugin.utils import (
    add_common_args,
    close_distributed,
    enable_amp,
    load_config,
    prepare_distributed,
    prepare_offline,
    seed_message,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='mixed precision: float16 on CUDA, bfloat16 on CPU')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the real batch size (auto_scale_lr in cfg)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; without a path, from the '
        'latest checkpoint in the work dir')
    add_common_args(parser)
    return parser.parse_args()


def apply_train_flags(cfg: Config, args: argparse.Namespace) -> None:
    if args.amp:
        try:
            print(enable_amp(cfg, torch.cuda.is_available()))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr', {})
        if 'enable' not in scale or 'base_batch_size' not in scale:
            raise SystemExit('--auto-scale-lr needs auto_scale_lr=dict('
                             'enable=..., base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        if osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')):
            cfg.resume = True
            cfg.load_from = None
        else:  # mmengine would start from scratch without load_from
            cfg.resume = False  # not from load_from's optimizer state
            print(f'[train] --resume: nothing to resume in {cfg.work_dir} '
                  '(no last_checkpoint); training from the start'
                  + (f' with load_from={cfg.load_from}'
                     if cfg.get('load_from') else ''), flush=True)
    elif args.resume is not None:
        if '://' not in args.resume and not osp.isfile(args.resume):
            raise SystemExit(f'--resume: checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume


def main() -> None:
    args = parse_args()
    # Reduce repeated compilations and improve training speed (as mmdet).
    setup_cache_size_limit_of_dynamo()
    cfg = load_config(args)
    apply_train_flags(cfg, args)
    prepare_offline(cfg)  # no download of weights load_from overwrites
    prepare_distributed(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    print(seed_message(cfg, runner.seed), flush=True)
    runner.train()
    del runner  # its DDP reducer holds the process group
    close_distributed()


if __name__ == '__main__':
    main()
