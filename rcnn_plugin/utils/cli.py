"""What tools/train.py and tools/test.py share: common flags and config."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``.

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
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply the common flags, as mmdet's tools do.

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
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg
