"""TIDE error analysis of a checkpoint or of saved predictions, and a
gallery of the worst errors per class (``tools/analysis/error_analysis.py``).

Boxes are ``(x1, y1, x2, y2)`` in the original image's pixels, as
``tools/test.py --out`` dumps them and as the dataset annotates them.
"""
import copy
import json
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.fileio import load
from mmengine.logging import print_log

from rcnn_plugin.apis.drawing import draw_detections, to_bgr_uint8
from rcnn_plugin.apis.inputs import read_image
from rcnn_plugin.evaluation.functional.samples import gt_instances
from rcnn_plugin.evaluation.functional.tide import BKG, BOTH, CLS, LOC
from rcnn_plugin.evaluation.metrics.pr_curve_metric import class_key
from rcnn_plugin.evaluation.metrics.tide_metric import markdown_table
from rcnn_plugin.utils.checkpoint_io import check_checkpoint_fits

GALLERY_ERRORS = (CLS, LOC, BOTH, BKG)
GALLERY_NAMES = {CLS: 'Cls', LOC: 'Loc', BOTH: 'Both', BKG: 'Bkg'}
# The crops write_gallery names <class>/<rank>_<type>_<image stem>.png.
_CROP_TYPES = '|'.join(list(GALLERY_NAMES.values()) + ['Miss'])
_CROP_RE = re.compile(rf'\d{{2,}}_({_CROP_TYPES})_.*\.png')


def attach_ground_truth(preds: Sequence[dict], dataset,
                        max_images: Optional[int] = None) -> List[dict]:
    """Add the dataset's annotations to dumped predictions.

    Predictions are joined to the dataset's images by ``img_id`` and
    ``img_path`` (by ``img_id`` alone where only one prediction has it;
    two predictions of one image are an error). Every analysed
    image needs one: ``tools/test.py --out`` writes one per image, also
    without detections, so a missing one means another split or file.

    Args:
        preds (Sequence[dict]): Samples as ``tools/test.py --out`` dumps
            them (``img_id``, ``img_path``, ``pred_instances``).
        dataset (BaseDetDataset): The split the predictions were made on.
        max_images (int, optional): Use only the first N images of the
            dataset. Defaults to None (all).

    Returns:
        List[dict]: Samples with ``gt_instances`` and
        ``ignored_instances``, in the dataset's order.
    """
    find = _prediction_finder(preds)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    samples, found, missing = [], 0, []
    empty = dict(bboxes=torch.zeros((0, 4)), scores=torch.zeros(0),
                 labels=torch.zeros(0, dtype=torch.long))
    for idx in range(n):
        info = dataset.get_data_info(idx)
        pred = find(info)
        found += pred is not None
        if pred is None:
            missing.append(info['img_path'])
        sample = dict(img_id=info.get('img_id', idx),
                      img_path=info['img_path'],
                      pred_instances=(pred or {}).get('pred_instances',
                                                      empty),
                      gt_instances=gt_instances(info, False),
                      ignored_instances=gt_instances(info, True))
        samples.append(sample)
    if n and not found:
        raise ValueError(
            'no prediction matches an image of the dataset (by img_id and '
            'img_path): were they made on another split? Pass the same '
            '--split as the predictions.')
    labels = [int(label) for p in preds for label in
              p.get('pred_instances', {}).get('labels', [])]
    classes = len(dataset.metainfo['classes'])
    if labels and not 0 <= min(labels) <= max(labels) < classes:
        raise ValueError(
            f'the predictions have labels up to {max(labels)}, but the '
            f'dataset has {classes} classes: they were made by a model of '
            'another class list; dump them again with this config')
    if missing:  # an empty prediction would count as misses
        raise ValueError(
            f'the predictions cover {found} of the {n} images analysed '
            f'(first without one: {missing[0]}): they were made on another '
            'annotation file or fewer images; dump them again with '
            'tools/test.py --out on this split')
    return samples


def _prediction_finder(preds: Sequence[dict]) -> Callable:
    """Find an image's prediction by ``img_id`` and ``img_path`` (an id
    alone only where one prediction has it, two KITTI or YOLO folders
    sharing frame names, and its file name agrees); two predictions of one
    image are an error."""
    norm = lambda p: None if p is None else osp.normpath(  # noqa: E731
        osp.abspath(p))
    by_both, by_id = {}, {}
    for pred in preds:
        key = (pred.get('img_id'), norm(pred.get('img_path')))
        if key in by_both:
            raise ValueError(f'two predictions of one image (img_id '
                             f'{key[0]!r}, img_path {key[1]!r})')
        by_both[key] = pred
        by_id.setdefault(key[0], []).append(pred)

    def find(info: dict) -> Optional[dict]:
        img_id = info.get('img_id')
        pred = by_both.get((img_id, norm(info['img_path'])))
        if pred is None and len(by_id.get(img_id, [])) == 1:
            # another data root: the same file name, else another image
            # (COCO files of two splits both number their images from 1)
            only = by_id[img_id][0]
            if not only.get('img_path') or osp.basename(
                    only['img_path']) == osp.basename(info['img_path']):
                pred = only
        if pred is None:  # a prediction without img_id, by its path
            pred = by_both.get((None, norm(info['img_path'])))
        return pred
    return find


def load_predictions(path: str) -> List[dict]:
    """Predictions dumped by ``tools/test.py --out R.pkl``.

    Args:
        path (str): The ``.pkl`` file.

    Returns:
        List[dict]: One sample per image.
    """
    preds = load(path)
    if not isinstance(preds, list) or (preds and 'pred_instances'
                                       not in preds[0]):
        raise ValueError(f'{path} is not a prediction dump of tools/test.py '
                         '--out (a list of samples with pred_instances)')
    return preds


def check_max_images(cfg: Config, split: str,
                     max_images: Optional[int]) -> None:
    """Refuse ``max_images`` on a wrapped split (``indices`` would cut the
    wrapped dataset by position, not the wrapper's subset)."""
    dataset = cfg[f'{split}_dataloader'].dataset
    if max_images is not None and ('dataset' in dataset
                                   or 'datasets' in dataset):
        raise ValueError(
            f'--max-images needs a plain {split} dataset, got the wrapper '
            f'{dataset.get("type")!r}; drop --max-images')


def predict_split(cfg: Config, checkpoint: str, split: str, out_file: str,
                  work_dir: str, max_images: Optional[int] = None) -> None:
    """Run the checkpoint over a split and dump its predictions.

    Args:
        cfg (Config): The model's config.
        checkpoint (str): Checkpoint file.
        split (str): ``'val'`` or ``'test'`` (its dataloader is used).
        out_file (str): Where to dump the predictions (``.pkl``).
        work_dir (str): The runner's work dir (logs).
        max_images (int, optional): Only the first N images.
            Defaults to None.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    loader = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    if loader is None:
        raise ValueError(f'the config has no {split}_dataloader')
    if max_images is not None:
        check_max_images(cfg, split, max_images)
        loader.dataset.indices = max_images
    cfg.test_dataloader = loader
    cfg.test_evaluator = dict(type='DumpDetResults', out_file_path=out_file)
    cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
              else Runner.from_cfg(cfg))
    if isinstance(runner.model, torch.nn.Module) and '://' not in checkpoint:
        # mmengine loads leniently (another class count: a random head)
        model = runner.model
        check_checkpoint_fits(getattr(model, 'module', model), checkpoint)
    runner.test()


def _crop(image: np.ndarray, box: np.ndarray, pad: float,
          min_side: int = 192):
    """Crop around ``box`` padded by ``pad`` of its size on each side, then
    upscale so the longer side is at least ``min_side``; returns the crop,
    its origin and its scale."""
    h, w = image.shape[:2]
    bw, bh = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
    x1 = int(max(0, np.floor(box[0] - pad * bw)))
    y1 = int(max(0, np.floor(box[1] - pad * bh)))
    x2 = int(min(w, np.ceil(box[2] + pad * bw)))
    y2 = int(min(h, np.ceil(box[3] + pad * bh)))
    crop = image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
    scale = max(1.0, min_side / max(crop.shape[:2]))
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_LINEAR)
    return crop, np.array([x1, y1, x1, y1], float), scale


def draw_error(image: np.ndarray, entry: dict, classes: Sequence[str],
               pad: float = 0.5) -> np.ndarray:
    """A crop of one error: its box padded by ``pad``, the detection drawn
    in its class colour and the ground-truth box it concerns in green.

    Args:
        image (np.ndarray): BGR image (grey or float are converted).
        entry (dict): ``box`` / ``label`` / ``score`` of the detection
            (``score`` None for a missed box) and optionally ``gt_box`` /
            ``gt_label``.
        classes (Sequence[str]): Class names.
        pad (float): Context around the box, as a share of its size.
            Defaults to 0.5.

    Returns:
        np.ndarray: The annotated crop.
    """
    boxes = [np.asarray(entry['box'], float)]
    if entry.get('gt_box') is not None:
        boxes.append(np.asarray(entry['gt_box'], float))
    union = np.r_[np.min(boxes, 0)[:2], np.max(boxes, 0)[2:]]
    crop, origin, scale = _crop(image, union, pad)
    crop = to_bgr_uint8(crop)  # a copy: never draw into the caller's image
    if entry.get('gt_box') is not None:
        x1, y1, x2, y2 = ((np.asarray(entry['gt_box']) - origin) * scale
                          ).round().astype(int)
        cv2.rectangle(crop, (x1, y1), (x2, y2), (0, 200, 0), 1)
        cv2.putText(crop, f'GT {classes[entry["gt_label"]]}',
                    (x1, min(y2 + 12, crop.shape[0] - 2)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 200, 0), 1,
                    cv2.LINE_AA)
    if entry.get('score') is not None:
        det = dict(bbox_xyxy=(np.asarray(entry['box']) - origin) * scale,
                   label=entry['label'], score=entry['score'])
        crop = draw_detections(crop, [det], classes)
    return crop


def gallery_entries(pooled: dict, records: Sequence[dict],
                    class_names: Sequence[str],
                    top_k: int = 8) -> Dict[str, List[dict]]:
    """Per class, the ``top_k`` highest-scoring ``Cls`` / ``Loc`` /
    ``Both`` / ``Bkg`` errors and the ``top_k`` largest missed boxes.

    Args:
        pooled (dict): Output of :func:`pool_errors`.
        records (Sequence[dict]): The per-image records it was built from,
            with ``img_path``.
        class_names (Sequence[str]): Class names.
        top_k (int): Entries of each kind per class. Defaults to 8.

    Returns:
        dict: Class name -> entries (``type``, ``image``, ``box``,
        ``label``, ``score``, ``gt_box``, ``gt_label``).
    """
    out = {}
    for c, name in enumerate(class_names):
        sel = np.flatnonzero((pooled['labels'] == c)
                             & np.isin(pooled['error'], GALLERY_ERRORS))
        sel = sel[np.argsort(-pooled['scores'][sel], kind='mergesort')]
        entries = []
        for i in sel[:top_k]:
            res = records[pooled['image'][i]]
            j = pooled['target'][i]
            entries.append(dict(
                type=GALLERY_NAMES[int(pooled['error'][i])],
                image=res['img_path'],
                box=res['pred_bboxes'][pooled['index'][i]].tolist(),
                label=c, score=float(pooled['scores'][i]),
                gt_box=res['gt_bboxes'][j].tolist() if j >= 0 else None,
                gt_label=int(res['gt_labels'][j]) if j >= 0 else None))
        missed = np.flatnonzero(pooled['gt_missed']
                                & (pooled['gt_labels'] == c))
        boxes = [records[pooled['gt_image'][g]]['gt_bboxes'][
            pooled['gt_index'][g]] for g in missed]
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
        for k in np.argsort(-np.asarray(areas), kind='mergesort')[:top_k]:
            g = missed[k]
            entries.append(dict(
                type='Miss', image=records[pooled['gt_image'][g]]['img_path'],
                box=boxes[k].tolist(), label=c, score=None,
                gt_box=boxes[k].tolist(), gt_label=c))
        out[str(name)] = entries
    return out


def _remove_old_crops(out_dir: str) -> int:
    """Delete the crops an earlier run wrote into ``out_dir/<class>/``
    (only files named as :func:`write_gallery` names them), and class
    folders left empty by that; returns how many crops were deleted."""
    if not osp.isdir(out_dir):
        return 0
    removed = 0
    for sub in os.scandir(out_dir):
        if not sub.is_dir(follow_symlinks=False):
            continue
        crops = [f.path for f in os.scandir(sub.path)
                 if f.is_file(follow_symlinks=False)
                 and _CROP_RE.fullmatch(f.name)]
        for path in crops:
            os.remove(path)
        if crops and not os.listdir(sub.path):
            os.rmdir(sub.path)  # a class of the earlier run only
        removed += len(crops)
    return removed


def write_gallery(entries: Dict[str, List[dict]], class_names: Sequence[str],
                  out_dir: str, pad: float = 0.5,
                  read: Callable[[str], Optional[np.ndarray]] = read_image
                  ) -> str:
    """Write the crops to ``out_dir/<class>/`` and ``index.{json,md}``,
    first deleting the crops an earlier run wrote there (files named
    ``<rank>_<type>_<stem>.png`` in its class folders; other files stay).

    Args:
        entries (dict): Output of :func:`gallery_entries`.
        class_names (Sequence[str]): Class names.
        out_dir (str): The gallery dir.
        pad (float): Context around each box. Defaults to 0.5.
        read (Callable): Path -> image or None, as the dataset's loader
            reads it (:func:`~rcnn_plugin.apis.inputs.image_reader`; a
            16-bit image needs its intensity window). Defaults to
            :func:`~rcnn_plugin.apis.inputs.read_image` (8-bit BGR).

    Returns:
        str: Path of ``index.md``.
    """
    removed = _remove_old_crops(out_dir)  # else stale errors stay listed
    if removed:
        print_log(f'removed {removed} crops of an earlier run from '
                  f'{out_dir}', logger='current')
    os.makedirs(out_dir, exist_ok=True)
    cache: Dict[str, Optional[np.ndarray]] = {}
    rows = []
    subs: Dict[str, str] = {}
    for name in entries:  # 'a+b' and 'a&b' both key as 'a_b'
        sub = class_key(name)
        while sub in subs.values():
            sub += '_'
        subs[name] = sub
    for name, items in entries.items():
        sub = subs[name]
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
        for rank, entry in enumerate(items):
            path = entry['image']
            if path not in cache:
                cache.clear()  # images come grouped rarely; keep one
                cache[path] = read(path)
            stem = osp.splitext(osp.basename(path))[0]
            rel = f'{sub}/{rank:02d}_{entry["type"]}_{stem}.png'
            entry['file'] = None
            if cache[path] is not None:
                crop = draw_error(cache[path], entry, class_names, pad)
                cv2.imwrite(osp.join(out_dir, rel), crop)
                entry['file'] = rel
            box = ', '.join(f'{v:.0f}' for v in entry['box'])
            score = '-' if entry['score'] is None else f'{entry["score"]:.3f}'
            crop_link = f'![]({rel})' if entry['file'] else 'unreadable'
            rows.append([name, entry['type'], score, f'[{box}]',
                         osp.basename(path), crop_link])
    with open(osp.join(out_dir, 'index.json'), 'w') as f:
        json.dump(entries, f, indent=2)
    md = osp.join(out_dir, 'index.md')
    with open(md, 'w') as f:
        f.write('# Worst errors per class\n\nFalse positives (Cls, Loc, '
                'Both, Bkg) by score, then missed boxes by area; the '
                'ground-truth box concerned in green.\n\n')
        f.write(markdown_table(['class', 'type', 'score', 'box (x1, y1, '
                                'x2, y2)', 'image', 'crop'], rows) + '\n')
    return md
