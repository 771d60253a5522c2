"""Counts over a built dataset, shared by the dataset and config checks."""
from collections import OrderedDict
from typing import Dict

from mmengine.dataset import BaseDataset

__all__ = [
    'class_instance_counts', 'count_ignored_instances',
    'count_images_without_instances'
]


def _unwrap(dataset: BaseDataset) -> BaseDataset:
    """Return the innermost dataset of mmengine wrappers (repeat, balance)."""
    while hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


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
