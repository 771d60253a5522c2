"""Recall of a proposal file against a split's ground truth boxes.

Builds ``<split>_dataloader.dataset`` of a Fast R-CNN config (so the
proposal file is checked against the dataset as in training) and prints,
for each top-k, the share of non-ignored ground-truth boxes that some of
the first k proposals overlap with IoU >= the threshold.

Example::

    python tools/analysis/proposal_recall.py \
        configs/fast_rcnn/fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py --split test
"""
import argparse
from typing import Dict, Sequence

import numpy as np
import torch
from mmdet.registry import DATASETS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import register_all_modules
from mmengine.config import Config


def proposal_recall(dataset, top_ks: Sequence[int],
                    iou_thr: float = 0.5) -> Dict[int, float]:
    """Recall of ``data_info['proposals']`` for each k in ``top_ks``.

    Args:
        dataset (BaseDetDataset): A dataset loaded with a proposal file.
        top_ks (Sequence[int]): Numbers of best proposals to keep.
        iou_thr (float): IoU for a ground-truth box to count as found.
            Defaults to 0.5.

    Returns:
        dict[int, float]: k -> recall (NaN without ground-truth boxes).
    """
    found = {k: 0 for k in top_ks}
    total = 0
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        gt = [i['bbox'] for i in info['instances'] if not i['ignore_flag']]
        if not gt:
            continue
        gt = torch.tensor(gt, dtype=torch.float32)
        boxes = torch.as_tensor(
            np.asarray(info['proposals']['bboxes'], np.float32))
        total += len(gt)
        for k in top_ks:
            if len(boxes[:k]):
                iou = bbox_overlaps(gt, boxes[:k])
                found[k] += int((iou.max(dim=1).values >= iou_thr).sum())
    return {k: found[k] / total if total else float('nan') for k in top_ks}


def main() -> None:
    parser = argparse.ArgumentParser(description='Proposal recall')
    parser.add_argument('config', help='Fast R-CNN config (proposal_file)')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'])
    parser.add_argument('--top-k', type=int, nargs='+',
                        default=[100, 300, 1000])
    parser.add_argument('--iou-thr', type=float, default=0.5)
    args = parser.parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    import rcnn_plugin  # noqa: F401  (datasets, strict proposal loading)
    ds_cfg = cfg.get(f'{args.split}_dataloader').dataset
    ds_cfg.update(test_mode=True, pipeline=[])
    dataset = DATASETS.build(ds_cfg)
    for k, recall in proposal_recall(dataset, args.top_k,
                                     args.iou_thr).items():
        print(f'{args.split}: recall@{args.iou_thr:g} of the top {k} '
              f'proposals: {recall:.3f}')


if __name__ == '__main__':
    main()
