"""Build an ABR box-replay memory from a config's labelled training data.

For the first model of an incremental sequence (later steps get theirs
from ``ReplayMemoryHook``). The memory's classes are the training
dataset's, in its order. Example (BCCD 1+2: the RBC base model of
``configs/bccd_fewshot``'s base-training config, ``CFG``)::

    .venv/bin/python projects/IncrementalDet/tools/build_replay_memory.py \\
        $CFG --out work_dirs/bccd_fewshot/base/replay_memory \\
        --budget 50 --seed 0
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
if REPO not in sys.path:  # the project imports as projects.IncrementalDet
    sys.path.insert(0, REPO)

from mmdet.registry import DATASETS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from projects.IncrementalDet.incremental_det.replay_memory import (  # noqa
    build_replay_memory,
    load_replay_memory,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build a box-replay memory (ABR) from the training data '
        'of a config')
    parser.add_argument('config', help='config whose train_dataloader.'
                        'dataset holds the labelled boxes')
    parser.add_argument('--out', required=True,
                        help='memory folder to write (e.g. beside the '
                        'checkpoint: work_dirs/<run>/replay_memory)')
    parser.add_argument('--budget', type=int, default=50,
                        help='most crops per class (default 50)')
    parser.add_argument('--margin', type=float, default=0.1,
                        help='context on each side, a fraction of the box '
                        'size (default 0.1)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the selection (default 0)')
    parser.add_argument('--min-size', type=float, default=0,
                        help='skip boxes with a side below this, pixels')
    parser.add_argument('--old-memory',
                        help='a previous memory whose classes come first')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    old = load_replay_memory(args.old_memory) if args.old_memory else None
    memory = build_replay_memory(dataset, args.out, args.budget, args.margin,
                                 args.seed, args.min_size, old_memory=old)
    print(f'wrote {memory.index_file}: {memory.counts()}')


if __name__ == '__main__':
    main()
