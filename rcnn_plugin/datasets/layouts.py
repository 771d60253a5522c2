"""Dataset configs for the usual on-disk layouts of each format, per split.

Used by ``tools/analysis/check_dataset.py --data-root`` and the converters
in ``tools/dataset_converters``, so that a folder can be checked or
converted without writing a config first.
"""
import glob
import os.path as osp
from typing import Dict, Optional, Sequence

__all__ = ['FORMATS', 'split_configs']

FORMATS = ('yolo', 'via', 'labelme', 'kitti', 'voc', 'coco')


def _yolo(root: str) -> Dict[str, dict]:
    splits = {}
    for img in sorted(glob.glob(osp.join(root, 'images', '*'))):
        split = osp.basename(img)
        cvat = osp.join(img, 'obj_train_data')
        sub = 'obj_train_data' if osp.isdir(cvat) else ''
        ann = osp.join('labels', split, sub)
        if not osp.isdir(osp.join(root, ann)):
            continue  # images without labels (e.g. an unlabelled test set)
        splits[split] = dict(data_prefix=dict(
            img=osp.join('images', split, sub), ann=ann))
    if not splits and osp.isdir(osp.join(root, 'obj_train_data')):
        splits['train'] = dict(data_prefix=dict(img='obj_train_data'))
    return splits


def _via(root: str) -> Dict[str, dict]:
    splits = {}
    for path in sorted(glob.glob(osp.join(root, '*', '*.json'))):
        split = osp.basename(osp.dirname(path))
        splits.setdefault(split, dict(
            ann_file=osp.relpath(path, root),
            data_prefix=dict(img=split + '/')))
    for path in sorted(glob.glob(osp.join(root, '*.json'))):
        splits.setdefault(osp.splitext(osp.basename(path))[0], dict(
            ann_file=osp.basename(path), data_prefix=dict(img='')))
    return splits


def _labelme(root: str) -> Dict[str, dict]:
    splits = {
        osp.basename(d): dict(data_prefix=dict(ann=osp.basename(d)))
        for d in sorted(glob.glob(osp.join(root, '*')))
        if osp.isdir(d) and glob.glob(osp.join(d, '*.json'))
    }
    if glob.glob(osp.join(root, '*.json')) or not splits:
        splits = {'all': dict(data_prefix=dict(ann=''))}
    return splits


def _kitti(root: str) -> Dict[str, dict]:
    for sub in ('training', ''):
        if osp.isdir(osp.join(root, sub, 'label_2')):
            return {sub or 'all': dict(data_prefix=dict(
                img=osp.join(sub, 'image_2'), ann=osp.join(sub,
                                                           'label_2')))}
    return {}


def _voc(root: str) -> Dict[str, dict]:
    return {
        osp.splitext(osp.basename(p))[0]: dict(
            ann_file=osp.relpath(p, root), data_prefix=dict(
                sub_data_root=''))
        for p in sorted(glob.glob(osp.join(root, 'ImageSets', 'Main',
                                           '*.txt')))
        if '_' not in osp.basename(p)  # skip per-class lists
    }


def _coco(root: str) -> Dict[str, dict]:
    splits = {}
    for path in sorted(glob.glob(osp.join(root, 'annotations', '*.json'))):
        split = osp.splitext(osp.basename(path))[0]
        img = split.replace('instances_', '')
        splits[split] = dict(ann_file=osp.relpath(path, root),
                             data_prefix=dict(img=img + '/' if osp.isdir(
                                 osp.join(root, img)) else ''))
    return splits


_TYPES = dict(yolo='YOLODataset', via='VIADataset', labelme='LabelMeDataset',
              kitti='KittiDataset', voc='StrictXMLDataset',
              coco='CocoDataset')
_FINDERS = dict(yolo=_yolo, via=_via, labelme=_labelme, kitti=_kitti,
                voc=_voc, coco=_coco)


def split_configs(data_root: str, fmt: str,
                  classes: Optional[Sequence[str]] = None
                  ) -> Dict[str, dict]:
    """Dataset configs, one per split found under ``data_root``.

    Args:
        data_root (str): The dataset folder.
        fmt (str): One of :data:`FORMATS`.
        classes (Sequence[str], optional): Class names, required for
            ``labelme`` and ``voc`` and for ``via`` with several classes
            (then ``class_attribute='class'`` is assumed). Defaults to None.

    Returns:
        dict[str, dict]: Split name to a dataset config (``type``,
        ``data_root``, ``data_prefix``, ``ann_file``, ``metainfo``).
    """
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {FORMATS}, got {fmt!r}')
    if not osp.isdir(data_root):
        raise FileNotFoundError(f'data root {data_root} does not exist')
    if fmt in ('labelme', 'voc') and not classes:
        raise ValueError(f'{fmt} files carry no class list: give the class '
                         'names (--classes)')
    splits = _FINDERS[fmt](data_root)
    if not splits:
        raise FileNotFoundError(f'no {fmt} layout found under {data_root}; '
                                'see rcnn_plugin/datasets/layouts.py')
    for cfg in splits.values():
        cfg.update(type=_TYPES[fmt], data_root=data_root, pipeline=[])
        if classes:
            cfg['metainfo'] = dict(classes=tuple(classes))
        if fmt == 'via' and classes and len(classes) > 1:
            cfg['class_attribute'] = 'class'
        if fmt == 'via' and not classes:
            cfg['metainfo'] = dict(classes=('object', ))
    return splits
