"""``tools/tune.py``: hyperparameter search over a config with Optuna."""
import argparse
import os
import os.path as osp
import re
import sys
from typing import List, Optional

from mmengine.config import DictAction

from .space import SpaceError
from .study import (
    PRUNERS,
    StudyError,
    TuneOptions,
    export_study,
    run_study,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Search hyperparameters of a config with Optuna: each '
        'trial a short training, pruned on the per-epoch validation metric; '
        'the study is resumable from its SQLite file.')
    parser.add_argument('config', help='the base config')
    parser.add_argument('--space', required=True,
                        help='a Python file defining space = dict(...)')
    parser.add_argument('--trials', type=int, required=True,
                        help='trials the study should hold when done '
                        '(a resumed study runs only the missing ones)')
    parser.add_argument('--work-dir', help='default: work_dirs/tune_<config>')
    parser.add_argument('--storage', help='Optuna storage URL; default '
                        'sqlite:///WORK_DIR/study.db')
    parser.add_argument('--study-name', help='default: <config>__<space>')
    parser.add_argument('--metric', help="validation metric, e.g. "
                        "pascal_voc/mAP; default: the config's save_best")
    parser.add_argument('--direction', choices=['maximize', 'minimize'],
                        help='default: minimize for a loss, else maximize')
    parser.add_argument('--epochs', type=int,
                        help="each trial's epochs (default: the config's)")
    parser.add_argument('--val-interval', type=int,
                        help='validate every N epochs (default 1), or N '
                        'iterations for an iteration-based config (then '
                        'required); the pruner sees each validation')
    parser.add_argument('--seed', type=int, default=0,
                        help="the sampler's seed and every trial's "
                        'training seed')
    parser.add_argument('--timeout', type=float,
                        help='seconds after which no new trial starts')
    parser.add_argument('--pruner', choices=sorted(PRUNERS),
                        default='median')
    parser.add_argument('--sampler', choices=['tpe', 'random'],
                        default='tpe')
    parser.add_argument('--separate-processes', action='store_true',
                        help='train each trial with tools/train.py in its '
                        'own process (default: in this process)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides for the trials only (not written '
                        'to the best config), key=value')
    return parser.parse_args(argv)


def options(args: argparse.Namespace) -> TuneOptions:
    stem = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', f'tune_{stem}')
    space_stem = osp.splitext(osp.basename(args.space))[0]
    storage = args.storage or \
        f'sqlite:///{osp.abspath(osp.join(work_dir, "study.db"))}'
    name = args.study_name or re.sub(r'[^\w.-]', '_',
                                     f'{stem}__{space_stem}')
    if args.trials < 1:
        raise StudyError(f'--trials must be at least 1, got {args.trials}')
    if args.epochs is not None and args.epochs < 1:
        raise StudyError(f'--epochs must be at least 1, got {args.epochs}')
    if args.val_interval is not None and args.val_interval < 1:
        raise StudyError('--val-interval must be at least 1, got '
                         f'{args.val_interval}')
    return TuneOptions(
        config=args.config, space=args.space, trials=args.trials,
        work_dir=work_dir, storage=storage, study_name=name,
        metric=args.metric, direction=args.direction, epochs=args.epochs,
        val_interval=args.val_interval, seed=args.seed,
        timeout=args.timeout, pruner=args.pruner, sampler=args.sampler,
        separate_processes=args.separate_processes,
        cfg_options=args.cfg_options)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the study, then write trials.csv, plots/ and the best config.

    Returns:
        int: 0 when a trial completed, 1 when none did or a failure streak
        stopped the study, 2 on bad input, 130 when interrupted (Ctrl-C).
    """
    args = parse_args(argv)
    try:
        opts = options(args)
        os.makedirs(opts.work_dir, exist_ok=True)
        study, params, base, paths, metric, direction, stopped = \
            run_study(opts)
        out = export_study(study, params, base, paths, metric, opts)
    except KeyboardInterrupt:  # a sentence, not a traceback
        print('[tune] interrupted: finished trials are kept in the study; '
              'the same command resumes it (the cut trial runs again) and '
              'writes trials.csv and the best config', file=sys.stderr)
        return 130
    except (SpaceError, StudyError, ImportError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'[tune] trials: {out["csv"]}')
    for path in out['plots']:
        print(f'[tune] plot: {path}')
    if out['best'] is None:
        print('[tune] no trial completed; see the reasons in the CSV',
              file=sys.stderr)
        return 1
    best = out['best']
    print(f'[tune] best: trial {best.number}, {metric} {best.value:.4f} '
          f'({direction}); config: {out["best_config"]}')
    if stopped:
        print(f'{stopped} (the best so far is above)', file=sys.stderr)
        return 1
    return 0
