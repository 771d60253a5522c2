"""Class shares of the sampled positive RoIs: RandomSampler vs
ClassBalancedPosSampler on BCCD ground truth (no training).

Proposals per image: ``--jitter`` jittered copies of every GT box (centre
shift ~ N(0, 0.1 * size), log-size ~ N(0, 0.1)) plus 300 random boxes, a
stand-in for the RPN's 1000 training proposals. Both samplers then draw
from the same ``MaxIoUAssigner`` result with the R-CNN settings of
``configs/bccd`` (512 RoIs, 25 % positives, GT added as proposals)::

    python tools/analysis/roi_sampler_class_share.py \\
        --data-root ../shared/datasets/bccd --split train
"""
import argparse
import copy
import sys

import numpy as np
import torch
from mmdet.registry import DATASETS, TASK_UTILS
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import rcnn_plugin  # noqa: F401


def proposals(gt: torch.Tensor, jitter: int, size, rng) -> torch.Tensor:
    """Jittered GT copies plus random boxes, ``(x1, y1, x2, y2)`` pixels."""
    w, h = size
    wh = (gt[:, 2:] - gt[:, :2]).repeat(jitter, 1)
    ctr = ((gt[:, 2:] + gt[:, :2]) / 2).repeat(jitter, 1)
    ctr = ctr + torch.from_numpy(rng.normal(0, 0.1, ctr.shape)).float() * wh
    wh = wh * torch.from_numpy(np.exp(rng.normal(0, 0.1, wh.shape))).float()
    boxes = [torch.cat([ctr - wh / 2, ctr + wh / 2], 1)]
    xy = torch.from_numpy(rng.uniform(0, 1, (300, 2)) * [w, h]).float()
    side = torch.from_numpy(rng.uniform(10, 120, (300, 2))).float()
    boxes.append(torch.cat([xy, xy + side], 1))
    out = torch.cat(boxes)
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--split', default='train')
    parser.add_argument('--jitter', type=int, default=30)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    init_default_scope('mmdet')
    ds = DATASETS.build(dict(
        type='BCCDDataset', data_root=args.data_root.rstrip('/') + '/',
        ann_file=f'ImageSets/Main/{args.split}.txt',
        data_prefix=dict(sub_data_root=''), pipeline=[]))
    classes = ds.metainfo['classes']
    assigner = TASK_UTILS.build(dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
        min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1))
    samplers = {name: TASK_UTILS.build(dict(
        type=name, num=512, pos_fraction=0.25, neg_pos_ub=-1,
        add_gt_as_proposals=True))
        for name in ('RandomSampler', 'ClassBalancedPosSampler')}
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    counts = {name: np.zeros(len(classes)) for name in samplers}
    available = np.zeros(len(classes))
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        gt = InstanceData(
            bboxes=torch.tensor([x['bbox'] for x in info['instances']],
                                dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor([x['bbox_label']
                                 for x in info['instances']]))
        pred = InstanceData(priors=proposals(
            gt.bboxes, args.jitter, (info['width'], info['height']), rng))
        assign = assigner.assign(pred, gt)
        pos = assign.gt_inds > 0
        available += np.bincount(assign.labels[pos].numpy(),
                                 minlength=len(classes))
        for name, sampler in samplers.items():
            # sample() adds the GT to the assign result in place.
            res = sampler.sample(copy.deepcopy(assign), pred, gt)
            counts[name] += np.bincount(res.pos_gt_labels.numpy(),
                                        minlength=len(classes))
    print(f'{len(ds)} {args.split} images, positives before sampling '
          '(jittered proposals): ' + ', '.join(
              f'{c} {int(n)}' for c, n in zip(classes, available)))
    print('| sampler | ' + ' | '.join(f'{c} share' for c in classes)
          + ' | positives / image |')
    print('|---|' + '---|' * (len(classes) + 1))
    for name, c in counts.items():
        shares = ' | '.join(f'{v / c.sum():.3f}' for v in c)
        print(f'| {name} | {shares} | {c.sum() / len(ds):.1f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
