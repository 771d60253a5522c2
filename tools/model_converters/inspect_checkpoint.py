"""Show what a checkpoint holds and what of it would load into a config.

Examples::

    python tools/model_converters/inspect_checkpoint.py epoch_12.pth
    python tools/model_converters/inspect_checkpoint.py coco.pth \\
        --config configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py

Prints the classes and meta, tensors and parameters per module (``--depth``
name parts; ``--all`` lists every tensor) and, with ``--config``, the keys
that load, and those missing, unexpected or of another shape. ``--strict``
exits with status 1 when anything would not load.
"""
import argparse
import sys

from rcnn_plugin.engine import (
    compare_state_dicts,
    group_by_module,
    read_checkpoint,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--config', help='model config to check against')
    parser.add_argument('--depth', type=int, default=2,
                        help='name parts per module group (default 2)')
    parser.add_argument('--all', action='store_true',
                        help='list every tensor with its shape')
    parser.add_argument('--strict', action='store_true',
                        help='exit 1 if a key is missing, unexpected or of '
                        'another shape')
    return parser.parse_args(argv)


def print_meta(meta: dict) -> None:
    dataset_meta = meta.get('dataset_meta') or {}
    classes = dataset_meta.get('classes') or meta.get('CLASSES')
    if classes:
        print(f'classes ({len(classes)}): {", ".join(map(str, classes))}')
    else:
        print('classes: (none in meta)')
    for key, value in meta.items():
        if key in ('dataset_meta', 'CLASSES', 'hook_msgs', 'env_info'):
            continue
        text = repr(value)
        print(f'meta.{key}: {text[:200]}{"..." if len(text) > 200 else ""}')


def print_modules(state_dict: dict, depth: int, show_all: bool) -> None:
    total = sum(v.numel() for v in state_dict.values())
    print(f'\n{len(state_dict)} tensors, {total:,} elements')
    for prefix, (count, numel) in group_by_module(state_dict, depth).items():
        print(f'  {prefix:<50} {count:>5} tensors {numel:>14,}')
    if show_all:
        for key, value in state_dict.items():
            print(f'  {key:<70} {tuple(value.shape)}')


def check_config(state_dict: dict, config: str) -> int:
    """Print what loads into ``config``; return the number of problems."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    report = compare_state_dicts(state_dict, model.state_dict())
    print(f'\nagainst {config}:')
    print(f'  loaded: {len(report["loaded"])} of '
          f'{len(model.state_dict())} model tensors')
    for what in ('missing', 'unexpected'):
        keys = report[what]
        print(f'  {what} ({len(keys)}):')
        for key in keys:
            print(f'    {key}')
    print(f'  shape mismatch ({len(report["mismatched"])}):')
    for key, ours, theirs in report['mismatched']:
        print(f'    {key}: checkpoint {ours} vs model {theirs}')
    return sum(len(report[k]) for k in ('missing', 'unexpected',
                                        'mismatched'))


def main(argv=None) -> int:
    args = parse_args(argv)
    state_dict, meta = read_checkpoint(args.checkpoint)
    print(f'{args.checkpoint}')
    print_meta(meta)
    print_modules(state_dict, args.depth, args.all)
    if args.config:
        problems = check_config(state_dict, args.config)
        if problems and args.strict:
            return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
