"""Write any built detection dataset's data list as COCO JSON.

One writer for every format: the converters in
``tools/dataset_converters/*2coco.py`` build a dataset with our readers and
call :func:`dataset_to_coco`. What is written, per instance:

- ``bbox`` ``[x, y, w, h]`` in absolute pixels, from ``x1, y1, x2, y2``;
- ``category_id`` = ``bbox_label + 1`` (categories in METAINFO order);
- ``segmentation``: the polygons of ``mask`` (mmdet's flat format is
  COCO's) and ``area`` their area; without a mask, the box area;
- ``iscrowd`` = ``ignore_flag`` (mmdet's CocoDataset reads ``iscrowd=1``
  as an ignore region);
- other instance keys (KITTI ``truncated``, ``occluded``, ``alpha``) under
  ``attributes``.

Ignore regions without a class (KITTI ``DontCare``, ``bbox_label=-1``)
have no COCO category: they are left out, counted in the summary and
logged.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional, Sequence

from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from tqdm import tqdm

from ..utils.fileio import atomic_open
from .shapes import polygon_area

__all__ = ['convert_main', 'dataset_to_coco', 'polygon_area']

_STANDARD = ('bbox', 'bbox_label', 'ignore_flag', 'mask')


def _annotation(inst: dict, ann_id: int, img_id: int) -> dict:
    x1, y1, x2, y2 = (float(v) for v in inst['bbox'])
    ann = dict(id=ann_id, image_id=img_id,
               category_id=int(inst['bbox_label']) + 1,
               bbox=[x1, y1, x2 - x1, y2 - y1],
               iscrowd=int(bool(inst.get('ignore_flag', 0))))
    if inst.get('mask'):
        ann['segmentation'] = [[float(v) for v in p] for p in inst['mask']]
        ann['area'] = polygon_area(ann['segmentation'])
    else:
        ann['area'] = (x2 - x1) * (y2 - y1)
    extra = {k: v for k, v in inst.items() if k not in _STANDARD}
    if extra:
        ann['attributes'] = extra
    return ann


def dataset_to_coco(dataset,
                    out_file: str,
                    img_root: Optional[str] = None,
                    progress: bool = True) -> dict:
    """Write a detection dataset as a COCO JSON file.

    Args:
        dataset (BaseDetDataset): A built mmdet dataset; its data infos
            need ``img_path``, ``width``, ``height`` and ``instances``.
        out_file (str): The JSON file to write.
        img_root (str, optional): ``file_name`` is written relative to this
            folder; absolute paths if None. Defaults to None.
        progress (bool): Show a progress bar over the images.
            Defaults to True.

    Returns:
        dict: Summary: ``images``, ``annotations``, ``skipped_ignore``,
        ``under_one_pixel`` (written; mmdet's CocoDataset drops them).
    """
    dataset.full_init()
    images: List[dict] = []
    anns: List[dict] = []
    skipped = 0
    for idx in tqdm(range(len(dataset)), desc=f'writing {out_file}',
                    disable=not progress, unit='img'):
        info = dataset.get_data_info(idx)
        path = info['img_path']
        images.append(dict(
            id=idx + 1, width=int(info['width']), height=int(info['height']),
            file_name=osp.relpath(path, img_root) if img_root else
            osp.abspath(path)))
        for inst in info['instances']:
            if inst['bbox_label'] < 0:
                skipped += 1
                continue
            anns.append(_annotation(inst, len(anns) + 1, idx + 1))
    categories = [dict(id=i + 1, name=name)
                  for i, name in enumerate(dataset.metainfo['classes'])]
    with atomic_open(out_file) as f:  # an earlier file stays whole
        json.dump(dict(images=images, annotations=anns,
                       categories=categories), f)
    if skipped:
        print_log(f'{out_file}: left out {skipped} ignore region(s) without'
                  ' a class (e.g. KITTI DontCare)', logger='current',
                  level=30)
    # mmdet's CocoDataset drops boxes under 1 px wide or high, or of zero
    # area, when it reads the file: written, but said
    tiny = sum(1 for a in anns if a['bbox'][2] < 1 or a['bbox'][3] < 1
               or a['area'] <= 0)
    if tiny:
        print_log(f'{out_file}: {tiny} annotation(s) are under 1 px wide or '
                  "high, or of zero area: mmdet's CocoDataset leaves them "
                  'out when it reads the file', logger='current', level=30)
    return dict(images=len(images), annotations=len(anns),
                skipped_ignore=skipped, under_one_pixel=tiny)


def convert_main(fmt: str, argv: Optional[Sequence[str]] = None) -> int:
    """Command line of ``tools/dataset_converters/<fmt>2coco.py``.

    Args:
        fmt (str): The source format, one of ``layouts.FORMATS``.
        argv (Sequence[str], optional): Arguments; ``sys.argv`` if None.
            Defaults to None.

    Returns:
        int: Exit status.
    """
    from mmdet.registry import DATASETS

    from .layouts import LayoutError, detect_layout
    parser = argparse.ArgumentParser(
        description=f'Convert a {fmt} dataset to COCO JSON, one file per '
        'split found under DATA_ROOT.')
    parser.add_argument('data_root')
    parser.add_argument('out_dir', help='writes OUT_DIR/<split>.json')
    parser.add_argument('--classes', nargs='+',
                        help='class names, replacing the detected ones')
    parser.add_argument('--absolute-paths', action='store_true',
                        help='write absolute image paths, not relative to '
                        'DATA_ROOT')
    args = parser.parse_args(argv)
    init_default_scope('mmdet')
    try:
        layout = detect_layout(args.data_root, fmt, args.classes)
    except LayoutError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'{fmt}: splits {list(layout.splits)}, classes '
          f'{list(layout.classes)} from {layout.class_source}')
    for note in layout.notes:
        print(f'note: {note}')
    for split, cfg in layout.splits.items():
        cfg = dict(cfg, pipeline=[])
        if fmt not in ('voc', 'coco'):
            # convert what is there, with a bar over the files parsed
            cfg.update(check_classes='warn', show_progress=True)
        out = osp.join(args.out_dir, f'{split}.json')
        own = cfg.get('ann_file')
        if own and osp.realpath(out) == osp.realpath(
                osp.join(cfg.get('data_root') or '', own)):
            print(f'error: {out} is the {split} split\'s own annotation '
                  'file; choose another OUT_DIR', file=sys.stderr)
            return 2
        try:  # the readers' sentences name the file and line
            summary = dataset_to_coco(
                DATASETS.build(cfg), out,
                None if args.absolute_paths else args.data_root)
        except (ValueError, OSError) as err:
            print(f'error: {split}: {err}', file=sys.stderr)
            return 2
        print(f'{split}: {summary["images"]} images, '
              f'{summary["annotations"]} annotations -> {out}')
    return 0
