"""What tools/train.py and tools/test.py share: common flags and config."""
import argparse
import difflib
import inspect
import os
import os.path as osp
from typing import Any, List, Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from .overlay import apply_overlays

# Top-level keys a config may gain from --cfg-options besides the Runner's
# arguments: what mmengine's Runner reads from its cfg, and what mmdet's
# and our tools read.
_TOP_LEVEL = frozenset({
    'custom_imports', 'tta_model', 'tta_pipeline', 'runner_type',
    'backend_args', 'efficient_conv_bn_eval', 'compile', 'model_wrapper_cfg',
    'find_unused_parameters', 'sync_bn', 'activation_checkpointing'})
# How close a new key must be to an existing one to read as its typo.
_TYPO_CUTOFF = 0.8


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
    if not osp.isfile(args.config):
        raise SystemExit(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    apply_overlays(cfg, getattr(args, 'overlay', None) or [])
    merge_cfg_options(cfg, args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def _runner_keys() -> frozenset:
    from mmengine.runner import Runner
    return frozenset(inspect.signature(Runner.__init__).parameters) | \
        _TOP_LEVEL


def new_option_keys(cfg: Any, options: dict) -> List[str]:
    """Warnings for ``--cfg-options`` keys that look like typos of an
    existing key (``score_th`` for ``score_thr``): mmengine's merge adds
    them silently next to the setting they were meant to change.

    A key is suspect where its first missing part is close to a key of the
    same dict (``difflib`` ratio >= 0.8) and would be added to a plain
    settings dict (one without ``type``), or at the top level where it is
    no key the ``Runner`` reads. New arguments of a dict with a ``type``
    are not suspect: the registry passes them to the class, which refuses
    an unknown one. A new key near no existing one (a hook, a setting the
    config left to its default) is taken as meant.

    Args:
        cfg (Config | dict): The config before the merge.
        options (dict): ``{dotted key: value}`` as ``DictAction`` gives.

    Returns:
        list[str]: One sentence per suspect key, with the closest
        existing keys.
    """
    warnings = []
    root = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for key in options or {}:
        node, where = root, ''
        for part in key.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    break  # mmengine raises on this itself
                node, where = node[int(part)], f'{where}.{part}'.lstrip('.')
                continue
            if not isinstance(node, dict):
                break  # the value is replaced; mmengine decides
            if part in node:
                node, where = node[part], f'{where}.{part}'.lstrip('.')
                continue
            close = difflib.get_close_matches(
                part, [k for k in node if isinstance(k, str)], n=3,
                cutoff=_TYPO_CUTOFF)
            if close and part != '_delete_' and (
                    (where and 'type' not in node)
                    or (not where and part not in _runner_keys())):
                warnings.append(
                    f'--cfg-options {key}: {part!r} is not a key of '
                    f"{where or 'the config'}, so it is added as a new one "
                    'that nothing may read; did you mean '
                    f"{' or '.join(map(repr, close))}?")
            break
    return warnings


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> None:
    """Merge ``--cfg-options`` into ``cfg``, warning about keys that look
    like typos (:func:`new_option_keys`).

    Args:
        cfg (Config): The config, changed in place.
        options (dict, optional): The parsed ``--cfg-options``.
    """
    if not options:
        return
    for warning in new_option_keys(cfg, options):
        print_log(warning, 'current', level=30)
    cfg.merge_from_dict(options)


def converted_path(parser: argparse.ArgumentParser, src: str,
                   dst: str) -> str:
    """Check a converter's output path, and make its folder.

    Args:
        parser (argparse.ArgumentParser): For the error.
        src (str): The input checkpoint.
        dst (str): The output checkpoint.

    Returns:
        str: ``dst``, whose parent folder now exists.
    """
    if osp.abspath(dst) == osp.abspath(src) or (
            osp.exists(src) and osp.exists(dst) and osp.samefile(src, dst)):
        parser.error(f'dst is the source checkpoint {src}: writing it '
                     'would destroy the source; name another file')
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    return dst


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


def earlier_output(path: str, resumable: bool = False) -> Optional[str]:
    """The sentence refusing to overwrite an earlier run's ``path``, or
    None when there is no such file.

    Tools that write hours of results call it unless ``--overwrite`` (or
    ``--resume``) was given, so a plain rerun never replaces them.

    Args:
        path (str): The result file a rerun would overwrite.
        resumable (bool): The tool has ``--resume``. Defaults to False.
    """
    if not osp.isfile(path):
        return None
    resume = 'add --resume to continue it, ' if resumable else ''
    return (f'{path} exists (an earlier run): {resume}add --overwrite to '
            'start again, or choose another --out-dir')
