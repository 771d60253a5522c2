"""Few-shot surgery (TFA step 2): base-class checkpoint -> base+novel head.

Example (BCCD: RBC base; WBC and Platelets novel)::

    python tools/model_converters/fewshot_surgery.py \\
        work_dirs/base/epoch_8.pth work_dirs/base/surgery_cos_random.pth \\
        --classes RBC WBC Platelets --cosine --init random

Base classes keep their ``fc_cls`` / ``fc_reg`` rows (the background row
stays last), novel classes get fresh rows: ``--init random`` as mmdet
initialises them (TFA's ``randinit``), or ``--init prototype``: the
``fc_cls`` row of a novel class points along the mean normalised RoI
embedding of its K-shot GT boxes (read from ``--config``'s training set,
through the base model), scaled to the mean norm of the base rows.
``--cosine`` drops the ``fc_cls`` bias, which ``CosineSimBBoxHead`` has
not. Row surgery itself is :mod:`rcnn_plugin.models.utils.class_surgery`.
"""
import argparse
import os.path as osp
import random
import sys
from typing import Dict, List

import numpy as np
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from rcnn_plugin.engine import read_checkpoint
from rcnn_plugin.models.utils import (
    build_class_mapping,
    class_prototypes,
    remap_state_dict,
)
from rcnn_plugin.utils import converted_path, merge_cfg_options

CLS_W = 'roi_head.bbox_head.fc_cls.weight'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='base-training checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--classes', nargs='+', required=True,
                        help='all classes of the fine-tuning set, in its '
                        'order (base classes keep their rows)')
    parser.add_argument('--init', choices=['random', 'prototype'],
                        default='random', help='novel-row initialisation')
    parser.add_argument('--cosine', action='store_true',
                        help='target head is CosineSimBBoxHead (no bias)')
    parser.add_argument('--config', help='fine-tuning config: its model and '
                        'train_dataloader.dataset give the prototypes')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of --config')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random rows and of the training '
                        'pipeline that computes prototypes')
    args = parser.parse_args(argv)
    converted_path(parser, args.src, args.dst)
    return args


def base_classes(meta: dict, path: str) -> List[str]:
    """Classes of the base checkpoint, from its meta."""
    classes = (meta.get('dataset_meta') or {}).get('classes')
    if not classes:
        raise ValueError(f'{path} has no meta["dataset_meta"]["classes"]: '
                         'is it an mmengine training checkpoint?')
    return list(classes)


def check_class_order(cfg: Config, classes: List[str]):
    """Refuse ``--classes`` that are not the fine-tuning set's, in its
    order: rows written in another order have the same shapes and load
    silently under the wrong labels. Returns the built training set."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    have = list(dataset.metainfo['classes'])
    if have != classes:
        raise ValueError(f'--config training set has classes {have}, '
                         f'--classes says {classes}: give them in the '
                         'training set\'s order')
    return dataset


def novel_prototypes(cfg: Config, state_dict: Dict[str, torch.Tensor],
                     src: List[str], dst: List[str],
                     novel: List[str], seed: int = 0, dataset=None
                     ) -> Dict[int, torch.Tensor]:
    """fc_cls rows of the novel classes from their K-shot prototypes
    (``dataset``: the built training set, else built here)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    model_cfg.roi_head.bbox_head.num_classes = len(src)
    model = MODELS.build(model_cfg)
    body = {k: v for k, v in state_dict.items()
            if not k.startswith(('roi_head.bbox_head.fc_cls',
                                 'roi_head.bbox_head.fc_reg'))}
    missing, _ = model.load_state_dict(body, strict=False)
    missing = [k for k in missing if '.fc_cls.' not in k
               and '.fc_reg.' not in k]
    if missing:
        raise ValueError(f'--config model does not match the checkpoint: '
                         f'missing {missing[:5]}')
    model.eval()
    if dataset is None:
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    # The training pipeline's random flips draw from numpy / random: seed
    # them, so that the prototypes (and the checkpoint) repeat.
    np.random.seed(seed)
    random.seed(seed)
    batches = (pseudo_collate([dataset[i]]) for i in range(len(dataset)))
    protos, counts = class_prototypes(model, batches, len(dst))
    base_norm = state_dict[CLS_W][:len(src)].norm(dim=1).mean()
    rows = {}
    for name in novel:
        t = dst.index(name)
        if counts[t] == 0:
            raise ValueError(f'class {name!r} has no GT box in the --config '
                             'training set: no prototype')
        rows[t] = protos[t] / protos[t].norm().clamp(min=1e-12) * base_norm
        print(f'{name:>20}: prototype of {int(counts[t])} box(es)')
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    state_dict, meta = read_checkpoint(args.src)
    src = base_classes(meta, args.src)
    lost = [c for c in src if c not in args.classes]
    if lost:
        raise ValueError(f'base classes {lost} of {args.src} are missing '
                         f'from --classes {args.classes}')
    novel = [c for c in args.classes if c not in src]
    sources = build_class_mapping(src, args.classes)
    protos = {}
    if args.init == 'prototype' and not args.config:
        raise ValueError('--init prototype needs --config')
    if args.config:
        cfg = Config.fromfile(args.config)
        merge_cfg_options(cfg, args.cfg_options)
        dataset = check_class_order(cfg, list(args.classes))
    else:  # rows in another order load silently under the wrong labels
        print('--classes is taken to be in the fine-tuning set\'s order '
              '(give --config to check it)')
    if args.init == 'prototype':
        protos = {CLS_W: novel_prototypes(cfg, state_dict, src,
                                          list(args.classes), novel,
                                          seed=args.seed, dataset=dataset)}
    new_sd = remap_state_dict(state_dict, len(src), sources, protos,
                              seed=args.seed)
    if args.cosine:
        new_sd.pop('roi_head.bbox_head.fc_cls.bias', None)
    dataset_meta = dict(meta.get('dataset_meta') or {}, classes=tuple(
        args.classes))
    dataset_meta.pop('palette', None)
    meta = dict(meta, dataset_meta=dataset_meta, fewshot_surgery=dict(
        file=osp.basename(args.src), base=tuple(src), novel=tuple(novel),
        init=args.init, cosine=args.cosine, seed=args.seed))
    torch.save({'meta': meta, 'state_dict': new_sd}, args.dst)
    print(f'base {src} kept, novel {novel} initialised ({args.init}); '
          f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
