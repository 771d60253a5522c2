"""Build the data samples the metrics receive, from plain lists."""
import numpy as np
import torch

CLASSES = ('a', 'b')


def _inst(boxes, labels, scores=None):
    out = dict(bboxes=torch.tensor(np.reshape(boxes, (-1, 4)),
                                   dtype=torch.float32),
               labels=torch.tensor(labels, dtype=torch.long))
    if scores is not None:
        out['scores'] = torch.tensor(scores, dtype=torch.float32)
    return out


def sample(img_id, gt=(), pred=(), ignore=()):
    """gt / ignore: [(box, label)]; pred: [(box, label, score)]."""
    return dict(
        img_id=img_id, img_path=f'{img_id}.png',
        gt_instances=_inst([g[0] for g in gt], [g[1] for g in gt]),
        ignored_instances=_inst([g[0] for g in ignore],
                                [g[1] for g in ignore]),
        pred_instances=_inst([p[0] for p in pred], [p[1] for p in pred],
                             [p[2] for p in pred]))


def evaluate(metric, samples, classes=CLASSES):
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


A = [0, 0, 10, 10]
B = [20, 20, 30, 30]
FAR = [60, 60, 70, 70]

PERFECT = [sample(0, gt=[(A, 0), (B, 1)], pred=[(A, 0, 0.9), (B, 1, 0.8)])]
ALL_FP = [sample(0, gt=[(A, 0), (B, 1)],
                 pred=[(FAR, 0, 0.9), (FAR, 1, 0.8), ([80, 0, 90, 9], 0,
                                                      0.7)])]
NO_PRED = [sample(0, gt=[(A, 0), (B, 1)]), sample(1, gt=[(A, 1)])]
# Image 1 has no GT: its two class-a detections are FPs.
NO_GT = [sample(0, gt=[(A, 0)], pred=[(A, 0, 0.7)]),
         sample(1, pred=[(A, 0, 0.9), (B, 0, 0.6)])]
# Two detections of one box (IoU 0.81): one TP, one duplicate.
DUPLICATE = [sample(0, gt=[(A, 0)],
                    pred=[(A, 0, 0.9), ([1, 1, 10, 10], 0, 0.8)])]
