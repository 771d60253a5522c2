"""Check a dataset for problems that break or silently spoil training.

Usage::

    python tools/analysis/check_dataset.py CONFIG [--splits train val]
    python tools/analysis/check_dataset.py --data-root PATH [--format yolo] \
        [--classes a b] [--out report.json] [--no-decode]

With ``--data-root`` the format, splits and classes are detected
(``rcnn_plugin/datasets/layouts``) unless ``--format`` names the format;
what was detected and any notes (e.g. class lists that disagree) are
printed first. Prints a table per split, writes a JSON report with
``--out`` and exits with status 1 if a split has a fatal problem (see
``rcnn_plugin/datasets/validation.py``), 2 if the folder is not understood.
"""
import argparse
import json
import sys

from mmengine.config import Config
from mmengine.registry import init_default_scope

from rcnn_plugin.datasets import (
    FORMATS,
    LayoutError,
    check_dataset_cfg,
    detect_layout,
    format_report,
    is_fatal,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', help='a training config')
    parser.add_argument('--splits', nargs='+', default=['train', 'val',
                                                        'test'],
                        help='config dataloaders to check')
    parser.add_argument('--data-root', help='check a folder instead')
    parser.add_argument('--format', choices=('auto', ) + FORMATS,
                        default='auto',
                        help='format of --data-root (default: detect it)')
    parser.add_argument('--classes', nargs='+',
                        help='class names, replacing the detected ones')
    parser.add_argument('--out', help='write the JSON report here')
    parser.add_argument('--no-decode', action='store_true',
                        help='check image headers only (faster)')
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.data_root):
        parser.error('give either CONFIG or --data-root')
    if args.config and (args.classes or args.format != 'auto'):
        # they were ignored: a config's datasets say their own
        parser.error('--classes and --format are for --data-root; a '
                     "config's datasets name their classes and format")
    return args


def dataset_cfgs(args: argparse.Namespace) -> dict:
    if args.data_root:
        layout = detect_layout(args.data_root, args.format, args.classes)
        print(f'{layout.data_root}: {layout.fmt} format, splits '
              f'{list(layout.splits)} (train: {layout.train_split}, val: '
              f'{layout.val_split}), classes {list(layout.classes)} from '
              f'{layout.class_source}')
        for note in layout.notes:
            print(f'note: {note}')
        return {name: dict(cfg, pipeline=[])
                for name, cfg in layout.splits.items()}
    cfg = Config.fromfile(args.config)
    cfgs = {}
    for split in args.splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('dataset'):
            cfgs[split] = loader['dataset'].to_dict()
    if not cfgs:
        raise SystemExit(f'{args.config} has no {args.splits} dataloaders')
    return cfgs


def main(argv=None) -> int:
    args = parse_args(argv)
    init_default_scope('mmdet')
    import rcnn_plugin  # noqa: F401  (registers the datasets)
    try:
        cfgs = dataset_cfgs(args)
    except LayoutError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    reports = {split: check_dataset_cfg(cfg, not args.no_decode)
               for split, cfg in cfgs.items()}
    print(format_report(reports))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(reports, f, indent=2)
        print(f'report written to {args.out}')
    fatal = is_fatal(reports)
    print('FATAL problems found' if fatal else 'no fatal problems')
    return 1 if fatal else 0


if __name__ == '__main__':
    sys.exit(main())
