"""Recall of a proposal file against a split's ground truth boxes.

Builds ``<split>_dataloader.dataset`` of a Fast R-CNN config (so the
proposal file is checked against the dataset as in training) and prints,
for each top-k, the share of non-ignored ground-truth boxes that some of
the first k proposals overlap with IoU >= the threshold.

Recall is also given per class: a class the RPN does not propose cannot
be detected (e.g. an RPN trained on base classes only, few-shot).

Example::

    python tools/analysis/proposal_recall.py \
        configs/fast_rcnn/fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py --split test
    # proposals of another model, written by tools/generate_proposals.py
    python tools/analysis/proposal_recall.py \
        configs/fast_rcnn/fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        --split val \
        --proposal-file work_dirs/bccd_fewshot/base/proposals/val.pkl
"""
import argparse
import os.path as osp
from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
import torch
from mmdet.registry import DATASETS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import register_all_modules
from mmengine.config import Config


def proposal_recall(dataset, top_ks: Sequence[int],
                    iou_thr: float = 0.5,
                    per_class: bool = False) -> Dict[int, object]:
    """Recall of ``data_info['proposals']`` for each k in ``top_ks``.

    Args:
        dataset (BaseDetDataset): A dataset loaded with a proposal file.
        top_ks (Sequence[int]): Numbers of best proposals to keep.
        iou_thr (float): IoU for a ground-truth box to count as found.
            Defaults to 0.5.
        per_class (bool): Give the recall of each class (by
            ``bbox_label``) instead of one number. Defaults to False.

    Returns:
        dict[int, float | dict[int, float]]: k -> recall, or k -> {label:
        recall} with ``per_class``; NaN without ground-truth boxes.
    """
    found = {k: defaultdict(int) for k in top_ks}
    total = defaultdict(int)
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        kept = [i for i in info['instances'] if not i['ignore_flag']]
        if not kept:
            continue
        gt = torch.tensor([i['bbox'] for i in kept], dtype=torch.float32)
        labels = [i.get('bbox_label', -1) for i in kept]
        boxes = torch.as_tensor(
            np.asarray(info['proposals']['bboxes'], np.float32))
        for label in labels:
            total[label] += 1
        for k in top_ks:
            if not len(boxes[:k]):
                continue
            hit = bbox_overlaps(gt, boxes[:k]).max(dim=1).values >= iou_thr
            for label, h in zip(labels, hit.tolist()):
                found[k][label] += h

    def ratio(num: int, den: int) -> float:
        return num / den if den else float('nan')

    if per_class:
        return {k: {label: ratio(found[k][label], n)
                    for label, n in sorted(total.items())} for k in top_ks}
    return {k: ratio(sum(found[k].values()), sum(total.values()))
            for k in top_ks}


def main() -> None:
    parser = argparse.ArgumentParser(description='Proposal recall')
    parser.add_argument('config', help='Fast R-CNN config (proposal_file)')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'])
    parser.add_argument('--top-k', type=int, nargs='+',
                        default=[100, 300, 1000])
    parser.add_argument('--iou-thr', type=float, default=0.5)
    parser.add_argument('--proposal-file',
                        help="another proposal pickle (e.g. one that "
                        "generate_proposals.py wrote from another model) "
                        "instead of the config's")
    args = parser.parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    import rcnn_plugin  # noqa: F401  (datasets, strict proposal loading)
    from rcnn_plugin.datasets import set_test_mode, update_inner_dataset_cfg
    ds_cfg = cfg.get(f'{args.split}_dataloader').dataset
    # (set_test_mode drops bbox_min_size: mmdet's VOC asserts on it)
    update_inner_dataset_cfg(set_test_mode(ds_cfg), pipeline=[])
    if args.proposal_file:
        update_inner_dataset_cfg(
            ds_cfg, proposal_file=osp.abspath(args.proposal_file))
    dataset = DATASETS.build(ds_cfg)
    classes = dataset.metainfo['classes']
    overall = proposal_recall(dataset, args.top_k, args.iou_thr)
    by_class = proposal_recall(dataset, args.top_k, args.iou_thr, True)
    for k in args.top_k:
        each = ', '.join(f'{classes[label]} {recall:.3f}'
                         for label, recall in by_class[k].items())
        print(f'{args.split}: recall@{args.iou_thr:g} of the top {k} '
              f'proposals: {overall[k]:.3f} ({each})')


if __name__ == '__main__':
    main()
