"""Dataset checks shared by ``tools/analysis/check_dataset.py`` and others.

:func:`check_dataset_cfg` builds a dataset config leniently (no pipeline,
unknown classes counted instead of raised, no class check, ``test_mode``
so that no image is filtered) and reports, for one split:

- image and instance counts per class, ignored instances;
- missing, unreadable or corrupt images;
- zero-area, inverted and out-of-bounds boxes still in the data, and the
  boxes our readers dropped or clipped, and the shapes they skipped (VIA
  points, LabelMe lines and bitmap masks);
- unknown class names, METAINFO classes never present;
- duplicate image ids, images without annotations;
- errors raised while parsing (:class:`AnnotationError` and others).

``report['fatal']`` lists the problems that should stop a training run.
"""
import copy
import json
import os.path as osp
from collections import Counter
from typing import Dict, List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from PIL import Image

from ..utils.config_types import cfg_type_name
from .config_tree import set_test_mode
from .native import NativeDetDataset
from .stats import class_instance_counts

__all__ = ['check_dataset_cfg', 'format_report', 'is_fatal']

_BUILD_ERRORS = (ValueError, KeyError, FileNotFoundError, TypeError)


def _lenient(cfg: dict) -> dict:
    cfg = copy.deepcopy(dict(cfg))
    if cfg_type_name(cfg) == 'ImageSubsetDataset':  # check the listed images
        return dict(cfg, dataset=_lenient(cfg['dataset']))
    if isinstance(cfg.get('dataset'), dict):  # any other wrapper: all of it
        return _lenient(cfg['dataset'])
    if isinstance(cfg.get('datasets'), (list, tuple)):  # ConcatDataset
        return dict(cfg, datasets=[_lenient(d) for d in cfg['datasets']])
    kind = cfg['type']
    cls = kind if isinstance(kind, type) else (
        DATASETS.get(kind) or DATASETS.get(cfg_type_name(cfg)))
    if cls is None:
        raise KeyError(f'dataset type {cfg["type"]!r} is not registered')
    # test_mode keeps every image; set_test_mode also drops filter_cfg's
    # bbox_min_size, on which mmdet's XMLDataset asserts not test_mode.
    set_test_mode(cfg).update(pipeline=[], lazy_init=False)
    if issubclass(cls, NativeDetDataset):
        cfg.update(unknown_classes='skip', check_classes='off',
                   on_bad_image='skip')
    return cfg


def _image_problem(path: str, decode: bool) -> str:
    if not osp.isfile(path):
        return 'missing'
    try:
        with Image.open(path) as img:
            img.load() if decode else img.verify()
    except Exception as err:  # PIL raises many types for corrupt files
        return f'unreadable: {type(err).__name__}: {err}'
    return ''


def _box_counts(data_list: List[dict]) -> Dict[str, int]:
    counts = Counter(zero_area=0, inverted=0, out_of_bounds=0)
    for info in data_list:
        w, h = info.get('width', float('inf')), info.get('height',
                                                        float('inf'))
        for inst in info.get('instances', []):
            x1, y1, x2, y2 = inst['bbox']
            if x2 < x1 or y2 < y1:
                counts['inverted'] += 1
            elif x2 == x1 or y2 == y1:
                counts['zero_area'] += 1
            if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
                counts['out_of_bounds'] += 1
    return dict(counts)


def _coco_unknown(cfg: dict, classes: tuple) -> Dict[str, int]:
    """Annotations of COCO categories that mmdet would silently skip."""
    path = osp.join(cfg.get('data_root') or '', cfg['ann_file'])
    with open(path) as f:
        data = json.load(f)
    names = {c['id']: c['name'] for c in data.get('categories', [])}
    return dict(Counter(
        names.get(a['category_id'], str(a['category_id']))
        for a in data.get('annotations', [])
        if names.get(a['category_id']) not in classes))


def _inspect(dataset, cfg: dict, decode: bool) -> dict:
    data_list = [dataset.get_data_info(i) for i in range(len(dataset))]
    classes = tuple(dataset.metainfo['classes'])
    per_class = class_instance_counts(dataset)
    images_per_class = Counter()
    for info in data_list:
        for label in {i['bbox_label'] for i in info['instances']
                      if not i.get('ignore_flag', 0)}:
            images_per_class[classes[label]] += 1
    problems = {p: _image_problem(p, decode)
                for p in (info['img_path'] for info in data_list)}
    ids = Counter(info['img_id'] for info in data_list)
    report = dict(
        num_images=len(data_list),
        num_instances=sum(per_class.values()),
        num_ignored=sum(1 for info in data_list for i in info['instances']
                        if i.get('ignore_flag', 0)),
        classes={c: dict(images=images_per_class[c], instances=per_class[c])
                 for c in classes},
        images_without_annotations=sum(
            1 for info in data_list
            if not any(not i.get('ignore_flag', 0)
                       for i in info['instances'])),
        missing_images=sorted(p for p, v in problems.items()
                              if v == 'missing'),
        unreadable_images={p: v for p, v in problems.items()
                           if v.startswith('unreadable')},
        boxes=_box_counts(data_list),
        unknown_classes=dict(getattr(dataset, 'unknown_class_counts', {})),
        classes_never_present=[c for c in classes if not per_class[c]],
        duplicate_image_ids=sorted(str(k) for k, n in ids.items() if n > 1),
        errors=[])
    for message, problem in getattr(dataset, 'bad_images', {}).items():
        if 'does not exist' in problem or 'has no image' in problem:
            report['missing_images'].append(message)
        else:
            report['unreadable_images'][message] = problem
    report['boxes'].update(
        dropped_degenerate=sum(getattr(dataset, 'dropped_boxes',
                                       {}).values()),
        clipped=sum(getattr(dataset, 'clipped_boxes', {}).values()),
        skipped_shapes=sum(getattr(dataset, 'skipped_shapes', {}).values()))
    if isinstance(dataset, CocoDataset) and cfg.get('ann_file'):
        report['unknown_classes'] = _coco_unknown(cfg, classes)
    return report


def check_dataset_cfg(cfg: dict, decode_images: bool = True) -> dict:
    """Build a dataset config leniently and report its problems.

    Args:
        cfg (dict): A dataset config (wrappers such as ``RepeatDataset``
            are unwrapped). Its pipeline is ignored.
        decode_images (bool): Decode every image fully to find corrupt
            files; if False only the header is checked. Defaults to True.

    Returns:
        dict: The report (see the module docstring); ``report['fatal']``
        lists the fatal problems, empty when there are none.
    """
    try:
        cfg = _lenient(cfg)
        dataset = DATASETS.build(cfg)
    except _BUILD_ERRORS as err:  # the data's problem, said by its reader
        report = dict(num_images=0, num_instances=0, classes={},
                      missing_images=[], unreadable_images={},
                      unknown_classes={}, classes_never_present=[],
                      duplicate_image_ids=[],
                      errors=[f'{type(err).__name__}: {err}'])
    else:  # an error in the check itself is a bug: raised, not blamed on data
        report = _inspect(dataset, cfg, decode_images)
    report['dataset'] = cfg.get('type')
    report['fatal'] = [
        f'{key}: {report[key]}'[:500] for key in (
            'errors', 'missing_images', 'unreadable_images',
            'unknown_classes', 'duplicate_image_ids',
            'classes_never_present') if report.get(key)
    ]
    return report


def is_fatal(reports: Dict[str, dict]) -> bool:
    """Whether any split's report has a fatal problem.

    Args:
        reports (dict[str, dict]): Split name to :func:`check_dataset_cfg`
            report.

    Returns:
        bool: True if any report lists a fatal problem.
    """
    return any(r['fatal'] for r in reports.values())


def format_report(reports: Dict[str, dict]) -> str:
    """Render reports as a plain-text table per split.

    Args:
        reports (dict[str, dict]): Split name to report.

    Returns:
        str: The text, one block per split.
    """
    lines = []
    for split, rep in reports.items():
        lines.append(f'== {split} ({rep.get("dataset")}): '
                     f'{rep["num_images"]} images, {rep["num_instances"]} '
                     f'instances, {rep.get("num_ignored", 0)} ignored')
        lines.append(f'  {"class":<24}{"images":>8}{"instances":>11}')
        for name, c in rep['classes'].items():
            lines.append(f'  {name:<24}{c["images"]:>8}{c["instances"]:>11}')
        if 'boxes' in rep:
            lines.append('  boxes: ' + ', '.join(
                f'{k} {v}' for k, v in rep['boxes'].items()))
            lines.append('  images without annotations: '
                         f'{rep["images_without_annotations"]}')
        for problem in rep['fatal']:
            lines.append(f'  FATAL {problem}')
    return '\n'.join(lines)
