"""Convert a torchvision Faster/Mask R-CNN checkpoint to mmdet.

Example::

    python tools/model_converters/torchvision2mmdet.py \\
        fasterrcnn_resnet50_fpn_coco-258fb6c6.pth \\
        checkpoints/faster-rcnn_r50_fpn_torchvision_coco.pth

then test or fine-tune with the config it prints (in configs/torchvision/)
and ``load_from`` set to the output. torchvision's 91 COCO ids (background
and ten unused 'N/A' ids included) become mmdet's 80 COCO classes; a model
fine-tuned on other classes needs ``--classes`` (foreground names, in the
order of its class ids 1..C).
"""
import argparse
import sys

import torch
from mmdet.datasets import CocoDataset

from rcnn_plugin.engine import read_checkpoint
from rcnn_plugin.models.utils import remap_state_dict
from rcnn_plugin.models.utils.torchvision_detection import (
    ARCHS,
    convert_torchvision_detector,
    torchvision_coco_categories,
)
from rcnn_plugin.utils import converted_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='torchvision state dict (.pth)')
    parser.add_argument('dst', help='output mmdet checkpoint')
    parser.add_argument('--classes', nargs='+',
                        help='foreground class names of a fine-tuned model, '
                        'in the order of its class ids 1..C')
    args = parser.parse_args(argv)
    converted_path(parser, args.src, args.dst)
    return args


def coco_sources(num_classes: int) -> list:
    """Indices of mmdet's 80 COCO classes among torchvision's 90 ids."""
    names = torchvision_coco_categories()[1:]
    if num_classes != len(names):
        raise ValueError(
            f'the checkpoint has {num_classes} foreground classes, not '
            f"torchvision's {len(names)} COCO ids: pass --classes with "
            f'{num_classes} names')
    return [[names.index(c)] for c in CocoDataset.METAINFO['classes']]


def main(argv=None) -> int:
    args = parse_args(argv)
    state_dict, _ = read_checkpoint(args.src)
    state_dict, arch, num_classes = convert_torchvision_detector(state_dict)
    if args.classes:
        if len(args.classes) != num_classes:
            raise ValueError(f'--classes has {len(args.classes)} names; the '
                             f'checkpoint has {num_classes} classes')
        classes = tuple(args.classes)
    else:
        state_dict = remap_state_dict(state_dict, num_classes,
                                      coco_sources(num_classes))
        classes = tuple(CocoDataset.METAINFO['classes'])
    meta = dict(dataset_meta=dict(classes=classes),
                converted_from=f'torchvision {arch}', config=ARCHS[arch])
    torch.save({'meta': meta, 'state_dict': state_dict}, args.dst)
    print(f'{arch}: {len(state_dict)} tensors, {len(classes)} classes')
    print(f'config: {ARCHS[arch]}')
    if len(classes) != 80:
        print(f'set model.roi_head.bbox_head.num_classes={len(classes)} '
              '(and mask_head.num_classes for Mask R-CNN)')
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
