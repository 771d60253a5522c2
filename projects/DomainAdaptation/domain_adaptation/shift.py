"""Report a domain shift before adapting: the source model's per-class
accuracy on the target, beside the two domains' image statistics.

Image statistics are read from the image files (PIL): size, mode and
channel count, grey intensity mean and spread, RGB channel means, all in
0..255. Accuracy is VOC-style AP at IoU 0.5 per class (mmdet's
``eval_map``, area mode), from the detector's predictions on the target
test images against their boxes.
"""
from collections import Counter
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmdet.evaluation.functional import eval_map
from PIL import Image

__all__ = ['image_stats', 'per_class_ap', 'format_shift_report']


def image_stats(paths: Sequence[str]) -> dict:
    """Size, mode and colour statistics of a set of images.

    Args:
        paths (Sequence[str]): Image files.

    Returns:
        dict: ``num_images``, ``sizes`` (``'WxH'`` to count), ``modes``
        (PIL mode to count, e.g. ``RGBA``), ``intensity_mean`` and
        ``intensity_std`` (grey, mean over images of per-image values),
        ``rgb_mean`` (3 floats), all in 0..255.
    """
    if not paths:
        raise ValueError('image_stats needs at least one image')
    sizes, modes = Counter(), Counter()
    grey_mean, grey_std, rgb = [], [], []
    for path in paths:
        with Image.open(path) as img:
            sizes[f'{img.width}x{img.height}'] += 1
            modes[img.mode] += 1
            arr = np.asarray(img.convert('RGB'), dtype=np.float64)
        grey = arr @ np.array([0.299, 0.587, 0.114])
        grey_mean.append(grey.mean())
        grey_std.append(grey.std())
        rgb.append(arr.reshape(-1, 3).mean(0))
    return dict(num_images=len(paths), sizes=dict(sizes), modes=dict(modes),
                intensity_mean=float(np.mean(grey_mean)),
                intensity_std=float(np.mean(grey_std)),
                rgb_mean=[float(v) for v in np.mean(rgb, 0)])


def per_class_ap(model: torch.nn.Module, dataset, classes: Sequence[str],
                 iou_thr: float = 0.5,
                 use_legacy_coordinate: bool = True) -> List[dict]:
    """AP per class of a detector on a dataset with boxes, as mmdet's
    ``VOCMetric`` (``tools/test.py``) computes it: area mode, the legacy
    ``+1`` box size.

    Args:
        model (nn.Module): An mmdet detector (``test_step``).
        dataset: A test dataset (its pipeline packs the image; the boxes
            come from ``get_data_info``, in original image pixels).
        classes (Sequence[str]): Class names, in label order.
        iou_thr (float): IoU of a match. Defaults to 0.5.
        use_legacy_coordinate (bool): Boxes are ``x2 - x1 + 1`` wide, as in
            ``VOCMetric``. Before session 31 this report used False (the
            AP of session 12's source-only row). Defaults to True.

    Returns:
        list[dict]: Per class ``name``, ``num_gts``, ``num_dets``,
        ``recall`` (at the last detection) and ``ap``; classes without
        boxes in the dataset have ``ap`` None.
    """
    dets, anns = [], []
    model.eval()
    for i in range(len(dataset)):
        item = dataset[i]
        batch = dict(inputs=[item['inputs']],
                     data_samples=[item['data_samples']])
        with torch.no_grad():
            pred = model.test_step(batch)[0].pred_instances
        boxes = pred.bboxes.cpu().numpy()  # original image pixels
        scores = pred.scores.cpu().numpy()[:, None]
        labels = pred.labels.cpu().numpy()
        dets.append([np.hstack([boxes[labels == c], scores[labels == c]])
                     for c in range(len(classes))])
        anns.append(_annotation(dataset.get_data_info(i)['instances']))
    _, results = eval_map(dets, anns, iou_thr=iou_thr, logger='silent',
                          eval_mode='area',
                          use_legacy_coordinate=use_legacy_coordinate)
    out = []
    for name, res in zip(classes, results):
        recall = res['recall']
        out.append(dict(
            name=name, num_gts=int(res['num_gts']),
            num_dets=int(res['num_dets']),
            recall=float(recall[-1]) if np.size(recall) else 0.0,
            ap=float(res['ap']) if res['num_gts'] else None))
    return out


def _annotation(instances: List[dict]) -> dict:
    """``eval_map``'s annotation of one image from its data info."""
    keep = [x for x in instances if not x.get('ignore_flag', 0)]
    drop = [x for x in instances if x.get('ignore_flag', 0)]
    return dict(
        bboxes=np.array([x['bbox'] for x in keep], np.float32).reshape(-1, 4),
        labels=np.array([x['bbox_label'] for x in keep], np.int64),
        bboxes_ignore=np.array([x['bbox'] for x in drop],
                               np.float32).reshape(-1, 4),
        labels_ignore=np.array([x['bbox_label'] for x in drop], np.int64))


def _fmt_counts(counts: Dict[str, int]) -> str:
    return ', '.join(f'{k} ({v})' for k, v in sorted(counts.items()))


def format_shift_report(source: dict, target: dict,
                        accuracy: List[dict]) -> str:
    """Markdown: the image statistics side by side, then per-class AP.

    Args:
        source (dict): :func:`image_stats` of the source images.
        target (dict): :func:`image_stats` of the target images.
        accuracy (list[dict]): :func:`per_class_ap` on the target.

    Returns:
        str: The report.
    """
    def rgb(s):
        return ' / '.join(f'{v:.1f}' for v in s['rgb_mean'])

    lines = ['## Images', '', '| | source | target |', '|---|---|---|']
    for label, fn in (
            ('images', lambda s: str(s['num_images'])),
            ('size (W x H)', lambda s: _fmt_counts(s['sizes'])),
            ('file mode', lambda s: _fmt_counts(s['modes'])),
            ('grey intensity mean', lambda s: f"{s['intensity_mean']:.1f}"),
            ('grey intensity std', lambda s: f"{s['intensity_std']:.1f}"),
            ('R / G / B mean', rgb)):
        lines.append(f'| {label} | {fn(source)} | {fn(target)} |')
    lines += ['', '## Source model on the target (AP at IoU 0.5)', '',
              '| class | target boxes | detections | recall | AP50 |',
              '|---|---|---|---|---|']
    for row in accuracy:
        ap = 'no boxes' if row['ap'] is None else f"{row['ap']:.3f}"
        lines.append(f"| {row['name']} | {row['num_gts']} | "
                     f"{row['num_dets']} | {row['recall']:.3f} | {ap} |")
    aps = [r['ap'] for r in accuracy if r['ap'] is not None]
    if aps:
        lines += ['', f'mAP@0.5 over the {len(aps)} classes with boxes: '
                  f'{np.mean(aps):.3f}']
    return '\n'.join(lines) + '\n'
