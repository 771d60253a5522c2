"""What tools/train.py and tools/test.py share: common flags and config."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from .overlay import apply_overlays


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``.

    Also ``--overlay FILE...``: config snippets merged over the config.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument('--work-dir', help='the dir to save logs and outputs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value (xxx=yyy format)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--overlay',
        nargs='+',
        default=[],
        help='config snippets merged over the config, e.g. '
        'configs/_base_/tracking/tensorboard.py')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply the common flags, as mmdet's tools do.

    Overlay files (``--overlay``) are merged first, then ``--cfg-options``.
    The work dir is, in this order: ``--work-dir``, ``work_dir`` in the
    config, ``./work_dirs/<config name>``. ``LOCAL_RANK`` is set from
    ``--local-rank`` when the launcher did not set it.

    Args:
        args (argparse.Namespace): Parsed arguments with ``config``,
            ``work_dir``, ``cfg_options``, ``launcher`` and ``local_rank``.

    Returns:
        Config: The merged config.
    """
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    apply_overlays(cfg, getattr(args, 'overlay', None) or [])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def seed_message(cfg: Config, seed: int) -> str:
    """Say which seed the run uses and where it came from.

    Args:
        cfg (Config): The merged config.
        seed (int): The seed the runner set (``runner.seed``).

    Returns:
        str: One line for the console.
    """
    set_in_cfg = (cfg.get('randomness') or {}).get('seed') is not None
    origin = ('from the config' if set_in_cfg else
              'drawn at random: the config sets no randomness.seed, so '
              'this run cannot be repeated')
    return (f'[train] seed {seed} ({origin}; another: '
            '--cfg-options randomness.seed=N)')
