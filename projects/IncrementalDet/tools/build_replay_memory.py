"""Build an ABR box-replay memory from a config's labelled training data.

For the first model of an incremental sequence (later steps get theirs
from ``ReplayMemoryHook``). The memory's classes are the training
dataset's, in its order. Example (BCCD 1+2: the RBC base model of
``configs/bccd_fewshot``'s base-training config, ``CFG``)::

    .venv/bin/python projects/IncrementalDet/tools/build_replay_memory.py \\
        $CFG --out work_dirs/bccd_fewshot/base/replay_memory \\
        --budget 50 --seed 0

``--select mean --checkpoint CKPT`` keeps ABR's prototype boxes (nearest
the class mean of the model's RoI features) instead of a seeded sample.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
if REPO not in sys.path:  # the project imports as projects.IncrementalDet
    sys.path.insert(0, REPO)

from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmdet.utils import get_test_pipeline_cfg, register_all_modules  # noqa
from mmengine.config import Config, DictAction  # noqa: E402

from projects.IncrementalDet.incremental_det.prototypes import (  # noqa
    prototype_selector,
)
from projects.IncrementalDet.incremental_det.replay_memory import (  # noqa
    build_replay_memory,
    load_replay_memory,
)
from rcnn_plugin.utils import (  # noqa: E402
    load_checkpoint_safely,
    merge_cfg_options,
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
    parser.add_argument('--select', choices=('random', 'mean'),
                        default='random',
                        help='random: a seeded uniform sample per class; '
                        'mean: ABR\'s prototype boxes, nearest the class '
                        'mean of the RoI features under --checkpoint')
    parser.add_argument('--checkpoint',
                        help='the model whose RoI features --select mean '
                        'uses (the config\'s model)')
    parser.add_argument('--device', default='cpu',
                        help='device of --select mean (default cpu)')
    parser.add_argument('--min-size', type=float, default=0,
                        help='skip boxes with a side below this, pixels')
    parser.add_argument('--old-memory',
                        help='a previous memory whose classes come first')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config')
    return parser.parse_args(argv)


def _load_model(cfg: Config, checkpoint: str, device: str):
    """``cfg.model`` with the weights of ``checkpoint`` (safe loading)."""
    model = MODELS.build(cfg.model)
    state = load_checkpoint_safely(checkpoint, map_location='cpu')
    try:
        model.load_state_dict(state.get('state_dict', state))
    except RuntimeError as exc:
        sys.exit(f'build_replay_memory: {checkpoint} does not fit the '
                 f"config's model: {str(exc).splitlines()[0]} (give the "
                 'checkpoint trained with this config)')
    return model.to(device).eval()


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.select == 'mean' and not args.checkpoint:
        sys.exit('build_replay_memory: --select mean needs --checkpoint, '
                 'the model whose RoI features pick the prototype boxes')
    if args.checkpoint and args.select != 'mean':
        sys.exit('build_replay_memory: --checkpoint is only used by '
                 '--select mean')
    register_all_modules()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    old = load_replay_memory(args.old_memory) if args.old_memory else None
    select = None
    if args.select == 'mean':
        model = _load_model(cfg, args.checkpoint, args.device)
        select = prototype_selector(model, get_test_pipeline_cfg(cfg))
    memory = build_replay_memory(dataset, args.out, args.budget, args.margin,
                                 args.seed, args.min_size, old_memory=old,
                                 select=select)
    print(f'wrote {memory.index_file}: {memory.counts()}')


if __name__ == '__main__':
    main()
