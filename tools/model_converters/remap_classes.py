"""Re-target the class-specific head rows of a Faster/Mask R-CNN checkpoint.

Example (COCO model -> a driving dataset)::

    python tools/model_converters/remap_classes.py coco.pth out.pth \\
        --classes pedestrian car vehicle sign \\
        --map 'person:pedestrian' 'car,truck,bus:vehicle'

Target classes that share a name with a source class keep its rows (``car``
above) unless ``--no-match-names``; ``--map SRC[,SRC...]:DST`` maps (and
averages) explicitly; other target classes get fresh rows initialised as
mmdet does. The output holds only ``meta`` and ``state_dict`` (optimizer
state of the old head shapes is dropped).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

import torch

from rcnn_plugin.engine import read_checkpoint
from rcnn_plugin.models.utils import build_class_mapping, remap_state_dict
from rcnn_plugin.utils import converted_path


def parse_map(items: List[str]) -> Dict[str, List[str]]:
    """Parse ``'a,b:c'`` items into ``{'c': ['a', 'b']}``."""
    mapping: Dict[str, List[str]] = {}
    for item in items or []:
        src, sep, dst = item.rpartition(':')
        srcs = [s.strip() for s in src.split(',') if s.strip()]
        if not sep or not srcs or not dst.strip():
            raise ValueError(f'--map {item!r}: expected SRC[,SRC...]:DST')
        mapping.setdefault(dst.strip(), []).extend(srcs)
    return mapping


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='mmdet checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--classes', nargs='+', required=True,
                        help='target class names, in order')
    parser.add_argument('--src-classes', nargs='+',
                        help="source class names (default: the checkpoint's "
                        "meta['dataset_meta']['classes'])")
    parser.add_argument('--map', nargs='+', default=[], metavar='SRC:DST',
                        help="e.g. 'person:pedestrian' 'car,bus:vehicle'")
    parser.add_argument('--no-match-names', action='store_true',
                        help='do not map classes of the same name implicitly')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the fresh rows')
    args = parser.parse_args(argv)
    converted_path(parser, args.src, args.dst)
    return args


def source_classes(meta: dict, given, path: str) -> List[str]:
    """Source class names from the flag or the checkpoint meta."""
    if given:
        return list(given)
    classes = (meta.get('dataset_meta') or {}).get('classes') or \
        meta.get('CLASSES')
    if not classes:
        raise ValueError(f'{path} has no meta["dataset_meta"]["classes"]; '
                         'pass --src-classes')
    return list(classes)


def main(argv=None) -> int:
    args = parse_args(argv)
    state_dict, meta = read_checkpoint(args.src)
    src = source_classes(meta, args.src_classes, args.src)
    sources = build_class_mapping(src, args.classes, parse_map(args.map),
                                  match_names=not args.no_match_names)
    new_sd = remap_state_dict(state_dict, len(src), sources, seed=args.seed)
    dataset_meta = dict(meta.get('dataset_meta') or {})
    dataset_meta['classes'] = tuple(args.classes)
    palette = dataset_meta.get('palette')
    if palette is not None and len(palette) != len(args.classes):
        del dataset_meta['palette']
    meta = {k: v for k, v in meta.items() if k != 'CLASSES'}
    meta['dataset_meta'] = dataset_meta
    meta['remapped_from'] = dict(
        file=osp.basename(args.src), classes=tuple(src),
        sources={t: [src[i] for i in s]
                 for t, s in zip(args.classes, sources)})
    torch.save({'meta': meta, 'state_dict': new_sd}, args.dst)
    for name, srcs in zip(args.classes, sources):
        how = ' + '.join(src[i] for i in srcs) if srcs else 'new (mmdet init)'
        print(f'{name:>20} <- {how}')
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
