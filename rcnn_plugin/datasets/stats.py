"""Counts over a built dataset, shared by the dataset and config checks."""
from collections import OrderedDict
from typing import Dict, Iterable, List

import numpy as np
from mmengine.dataset import BaseDataset

__all__ = [
    'box_statistics', 'class_instance_counts', 'count_ignored_instances',
    'count_images_without_instances', 'labelled_cat_ids'
]


def _unwrap(dataset: BaseDataset) -> BaseDataset:
    """Return the innermost dataset of mmengine wrappers (repeat, balance)."""
    while hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def labelled_cat_ids(instances: Iterable[dict]) -> List[int]:
    """Labels of the instances that are not ignored, for ``get_cat_ids``.

    mmdet's ``BaseDetDataset.get_cat_ids`` returns every label, so an
    ignore region (``bbox_label=-1``: KITTI ``DontCare``, LabelMe
    ``__ignore__``, ``unknown_classes='ignore'``) gives mmdet's
    ``ClassAwareSampler`` a bare ``KeyError: -1`` and mmengine's
    ``ClassBalancedDataset`` a category of its own.

    Args:
        instances (Iterable[dict]): Instances with ``bbox_label`` and
            optionally ``ignore_flag``.

    Returns:
        list[int]: Labels (>= 0) of the instances with ``ignore_flag`` 0.
    """
    return [inst['bbox_label'] for inst in instances
            if not inst.get('ignore_flag', 0) and inst['bbox_label'] >= 0]


def class_instance_counts(dataset: BaseDataset) -> Dict[str, int]:
    """Count non-ignored instances per class of a detection dataset.

    Args:
        dataset (BaseDataset): An mmdet detection dataset (or an mmengine
            wrapper around one) whose data infos hold ``instances`` with
            ``bbox_label`` and optionally ``ignore_flag``.

    Returns:
        dict[str, int]: Class name to instance count, in METAINFO order,
        with zero for classes that never occur (after ``filter_cfg``).
    """
    dataset = _unwrap(dataset)
    dataset.full_init()
    classes = dataset.metainfo['classes']
    counts = OrderedDict((name, 0) for name in classes)
    for idx in range(len(dataset)):
        for inst in dataset.get_data_info(idx).get('instances', []):
            if inst.get('ignore_flag', 0):
                continue
            label = inst['bbox_label']
            if not 0 <= label < len(classes):
                raise ValueError(
                    f'image {dataset.get_data_info(idx).get("img_path")} '
                    f'has label {label}, outside the {len(classes)} '
                    f'METAINFO classes {tuple(classes)}')
            counts[classes[label]] += 1
    return dict(counts)


def count_images_without_instances(dataset: BaseDataset) -> int:
    """Count images that hold no non-ignored instance.

    Args:
        dataset (BaseDataset): As for :func:`class_instance_counts`.

    Returns:
        int: Number of images without any non-ignored instance.
    """
    dataset = _unwrap(dataset)
    dataset.full_init()
    return sum(
        1 for idx in range(len(dataset))
        if not any(not inst.get('ignore_flag', 0)
                   for inst in dataset.get_data_info(idx).get(
                       'instances', [])))


def count_ignored_instances(dataset: BaseDataset) -> int:
    """Count instances with ``ignore_flag=1`` (crowd, difficult, DontCare,
    or outside a K-shot split).

    Args:
        dataset (BaseDataset): As for :func:`class_instance_counts`.

    Returns:
        int: Number of ignored instances over all images.
    """
    dataset = _unwrap(dataset)
    dataset.full_init()
    return sum(
        1 for idx in range(len(dataset))
        for inst in dataset.get_data_info(idx).get('instances', [])
        if inst.get('ignore_flag', 0))


def box_statistics(dataset: BaseDataset) -> Dict[str, np.ndarray]:
    """Label, size and normalised centre of every non-ignored box.

    Boxes are read from the data infos (``x1, y1, x2, y2`` in absolute
    pixels of the original image), before any pipeline transform.

    Args:
        dataset (BaseDataset): As for :func:`class_instance_counts`.

    Returns:
        dict[str, np.ndarray]: One value per box: ``labels`` (int64),
        ``widths`` and ``heights`` (pixels), ``cx`` and ``cy`` (centre over
        the image width / height, in [0, 1]; NaN where the data info has
        no ``width`` / ``height``).
    """
    dataset = _unwrap(dataset)
    dataset.full_init()
    rows = []
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        img_w = info.get('width') or np.nan
        img_h = info.get('height') or np.nan
        for inst in info.get('instances', []):
            if inst.get('ignore_flag', 0):
                continue
            x1, y1, x2, y2 = (float(v) for v in inst['bbox'])
            rows.append((inst['bbox_label'], x2 - x1, y2 - y1,
                         (x1 + x2) / 2 / img_w, (y1 + y2) / 2 / img_h))
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return dict(labels=table[:, 0].astype(np.int64), widths=table[:, 1],
                heights=table[:, 2], cx=table[:, 3], cy=table[:, 4])
