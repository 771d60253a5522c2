"""The box-replay memory of ABR (Liu et al., ICCV 2023, "Augmented Box
Replay: Overcoming Foreground Shift for Incremental Object Detection").

ABR stores no old images, only old-class boxes: a crop of each kept box
(with some context around it) and its class. The next step pastes them
into its new-class images (:class:`BoxReplay`).

On disk a memory is a folder::

    replay_memory/
        index.json      # classes (ordered), budget, margin, seed, crops
        crops/00000_RBC.png ...

``index.json`` records, for every crop: ``file`` (relative to the
folder), ``label`` (index in ``classes``), ``class``, ``source`` (the
image it was cut from), ``box`` (the object in the source image) and
``box_in_crop`` (the object in the crop). Boxes are ``(x1, y1, x2, y2)``
in absolute pixels. Crops are PNG (lossless), BGR as mmcv reads them.

Selection: a fixed budget of crops per class, chosen by a seeded uniform
sample of the class's labelled boxes (``numpy.random.default_rng((seed,
label))``: a class's choice does not depend on the other classes), or
ABR's own default, the "prototype" boxes whose RoI features are nearest
the class mean under the trained detector (:mod:`.prototypes`).
"""
import json
import logging
import os
import os.path as osp
import re
import shutil
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence

import mmcv
import numpy as np
from mmengine.logging import print_log

INDEX_NAME = 'index.json'
FORMAT = 'abr-box-replay'
SELECTION = ('random: a seeded uniform sample of each class\'s boxes, '
             'numpy.random.default_rng((seed, label))')


def index_path(path: str) -> str:
    """The ``index.json`` of a memory given as its folder or index file.

    Args:
        path (str): A memory folder, or its ``index.json``.

    Returns:
        str: The path of the index file.
    """
    return path if path.endswith('.json') else osp.join(path, INDEX_NAME)


class ReplayMemory:
    """A box-replay memory: crops of old-class boxes with their labels.

    Args:
        root (str): The memory folder (crop files are relative to it).
        classes (Sequence[str]): Class names; crop labels index them.
        crops (list[dict]): One entry per crop (see the module docstring).
        budget (int): Most crops kept per class.
        margin (float): Context around each box, as a fraction of its
            width / height on each side.
        seed (int): Seed of the selection.
        min_size (float): Boxes with a side below this (pixels) were not
            kept. Defaults to 0.
        selection (str): How the crops were chosen. Defaults to
            ``SELECTION`` (seeded uniform).
    """

    def __init__(self, root: str, classes: Sequence[str], crops: List[dict],
                 budget: int, margin: float, seed: int,
                 min_size: float = 0, selection: str = SELECTION) -> None:
        self.root = root
        self.selection = selection
        self.classes = tuple(classes)
        self.crops = list(crops)
        self.budget, self.margin, self.seed = budget, margin, seed
        self.min_size = min_size
        self._cache: Dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def index_file(self) -> str:
        """str: The memory's ``index.json``."""
        return osp.join(self.root, INDEX_NAME)

    def counts(self) -> Dict[str, int]:
        """Crops per class.

        Returns:
            dict[str, int]: Class name to number of crops (0 included).
        """
        counts = {c: 0 for c in self.classes}
        for crop in self.crops:
            counts[crop['class']] += 1
        return counts

    def read(self, i: int) -> np.ndarray:
        """The image of crop ``i`` (HxWx3 uint8 BGR), cached.

        Args:
            i (int): Crop index.

        Returns:
            np.ndarray: The crop.
        """
        if i not in self._cache:
            path = osp.join(self.root, self.crops[i]['file'])
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'replay memory {self.index_file} lists the crop {path}, '
                    'which does not exist; rebuild the memory')
            self._cache[i] = mmcv.imread(path, channel_order='bgr')
        return self._cache[i]

    def save(self) -> str:
        """Write ``index.json`` (the crop files must be in place).

        Returns:
            str: The path of the index file.
        """
        index = dict(format=FORMAT, version=1, classes=list(self.classes),
                     budget=self.budget, margin=self.margin, seed=self.seed,
                     min_size=self.min_size, selection=self.selection,
                     counts=self.counts(), crops=self.crops)
        with open(self.index_file, 'w') as f:
            json.dump(index, f, indent=1)
        return self.index_file


def load_replay_memory(path: str,
                       classes: Optional[Sequence[str]] = None
                       ) -> ReplayMemory:
    """Load a memory and check that it was written for ``classes``.

    Args:
        path (str): The memory folder, or its ``index.json``.
        classes (Sequence[str], optional): The classes the memory must have,
            in order (a step's ``old_classes``). None: no check.

    Returns:
        ReplayMemory: The memory (crop images are read on use).

    Raises:
        FileNotFoundError: If the index file does not exist.
        ValueError: If the file is not a replay memory, or its classes
            differ from ``classes`` (both lists and the file are named).
    """
    index_file = index_path(path)
    if not osp.isfile(index_file):
        raise FileNotFoundError(
            f'replay memory not found: {index_file}. Build it with '
            'projects/IncrementalDet/tools/build_replay_memory.py from the '
            "previous step's data, or take the replay_memory/ folder the "
            "ReplayMemoryHook wrote next to the previous step's checkpoint")
    try:
        with open(index_file) as f:
            index = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{index_file} is not valid JSON: {exc}') from None
    if not isinstance(index, dict) or index.get('format') != FORMAT:
        raise ValueError(f'{index_file} is not a box-replay memory (no '
                         f'"format": "{FORMAT}")')
    mem_classes = list(index['classes'])
    if classes is not None and mem_classes != list(classes):
        raise ValueError(
            f'replay memory {index_file} was written for the classes '
            f'{mem_classes}, but the config\'s old classes are '
            f'{list(classes)} (same names, same order). Use the memory of '
            'the previous step, or rebuild it for these classes.')
    for crop in index['crops']:
        label = crop['label']
        if not (0 <= label < len(mem_classes)
                and mem_classes[label] == crop['class']):
            raise ValueError(f'{index_file}: crop {crop["file"]} has label '
                             f'{label} ({crop["class"]!r}), not one of '
                             f'{mem_classes}')
    return ReplayMemory(osp.dirname(osp.abspath(index_file)), mem_classes,
                        index['crops'], index['budget'], index['margin'],
                        index['seed'], index.get('min_size', 0),
                        index.get('selection', SELECTION))


def select_per_class(labels: Sequence[int], num_classes: int, budget: int,
                     seed: int) -> List[int]:
    """Choose at most ``budget`` items of each class, seeded.

    Args:
        labels (Sequence[int]): The class of each candidate.
        num_classes (int): Number of classes (labels are ``0..C-1``).
        budget (int): Most items kept per class.
        seed (int): Seed; class ``c`` draws from ``default_rng((seed, c))``.

    Returns:
        list[int]: Indices of the kept candidates, ascending.
    """
    if budget < 0:
        raise ValueError(f'budget must be >= 0, got {budget}')
    labels = np.asarray(labels, dtype=np.int64)
    keep = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) > budget:
            rng = np.random.default_rng((seed, c))
            idx = idx[rng.choice(len(idx), budget, replace=False)]
        keep.extend(idx.tolist())
    return sorted(keep)


def collect_boxes(dataset, labels: Sequence[int],
                  min_size: float = 0) -> List[dict]:
    """Labelled boxes of ``labels`` in a dataset (not ignored ones).

    Args:
        dataset (BaseDataset): An mmdet dataset (``get_data_info`` with
            ``img_path`` and ``instances``).
        labels (Sequence[int]): The class indices to collect.
        min_size (float): Skip boxes with a side below this. Defaults to 0.

    Returns:
        list[dict]: ``source``, ``box``, ``label`` per box, dataset order.
    """
    wanted, boxes = set(labels), []
    skipped = Counter()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        for inst in info.get('instances', []):
            x1, y1, x2, y2 = (float(v) for v in inst['bbox'])
            side = min(x2 - x1, y2 - y1)
            if inst.get('ignore_flag', 0) or inst['bbox_label'] not in wanted:
                continue
            if side <= 0 or side < min_size:
                skipped['of zero size' if side <= 0 else
                        f'with a side under min_size={min_size}'] += 1
                continue
            boxes.append(dict(source=info['img_path'], box=[x1, y1, x2, y2],
                              label=int(inst['bbox_label'])))
    if skipped:
        print_log('replay memory: left out ' + ', '.join(
            f'{n} box(es) {why}' for why, n in skipped.items()),
            logger='current', level=logging.WARNING)
    return boxes


def _cut(img: np.ndarray, box: List[float], margin: float):
    """Crop ``box`` with ``margin`` context, clipped to the image."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    cx1, cy1 = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
    cx2 = min(w, int(np.ceil(x2 + mx)))
    cy2 = min(h, int(np.ceil(y2 + my)))
    if cx2 - cx1 < 1 or cy2 - cy1 < 1:
        return None, None
    inner = [max(0., x1 - cx1), max(0., y1 - cy1),
             min(float(cx2 - cx1), x2 - cx1), min(float(cy2 - cy1), y2 - cy1)]
    return img[cy1:cy2, cx1:cx2], inner


def _file_name(i: int, name: str) -> str:
    return f'crops/{i:05d}_{re.sub(r"[^A-Za-z0-9_-]", "-", name)}.png'


def build_replay_memory(dataset, out_dir: str, budget: int,
                        margin: float = 0.1, seed: int = 0,
                        min_size: float = 0,
                        old_memory: Optional[ReplayMemory] = None,
                        select: Optional[Callable] = None) -> ReplayMemory:
    """Write the memory of a dataset's classes, after an old memory's.

    The classes of the new memory are the dataset's
    (``metainfo['classes']``). With ``old_memory`` they must start with
    its classes: its crops are kept (re-sampled to ``budget`` when it had
    more) and only the later classes are cut from the dataset (a step's
    ``old_classes + new_classes``, as :class:`NewClassDataset` numbers
    them).

    Args:
        dataset (BaseDataset): The labelled data of the step.
        out_dir (str): The memory folder to write (replaced if it is one).
        budget (int): Most crops per class.
        margin (float): Context on each side, a fraction of the box width /
            height. Defaults to 0.1.
        seed (int): Seed of the selection. Defaults to 0.
        min_size (float): Skip boxes with a side below this (pixels).
            Defaults to 0.
        old_memory (ReplayMemory, optional): The previous step's memory.
            Defaults to None.
        select (Callable, optional): ``select(boxes, num_classes, budget)``
            to the kept indices, with a ``description``, e.g.
            :func:`.prototypes.prototype_selector` (ABR's prototypes).
            The old memory's crops are re-sampled uniformly in any case.
            Defaults to None (seeded uniform).

    Returns:
        ReplayMemory: The written memory.
    """
    classes = tuple(dataset.metainfo['classes'])
    first = 0
    if old_memory is not None:
        first = len(old_memory.classes)
        if classes[:first] != old_memory.classes:
            raise ValueError(
                f'replay memory {old_memory.index_file} was written for the '
                f'classes {list(old_memory.classes)}, but the training data '
                f'starts with {list(classes[:first])} (all: '
                f'{list(classes)}); the old classes must come first, in the '
                'same order')
        if osp.abspath(out_dir) == osp.abspath(old_memory.root):
            raise ValueError(f'out_dir {out_dir} is the old memory itself; '
                             'write the new memory to another folder')
    if osp.isfile(osp.join(out_dir, INDEX_NAME)):
        shutil.rmtree(osp.join(out_dir, 'crops'), ignore_errors=True)
    os.makedirs(osp.join(out_dir, 'crops'), exist_ok=True)
    crops = []
    if old_memory is not None:
        old = old_memory.crops
        for i in select_per_class([c['label'] for c in old], first, budget,
                                  seed):
            entry = dict(old[i], file=_file_name(len(crops), old[i]['class']))
            shutil.copyfile(osp.join(old_memory.root, old[i]['file']),
                            osp.join(out_dir, entry['file']))
            crops.append(entry)
    boxes = collect_boxes(dataset, range(first, len(classes)), min_size)
    if select is None:
        keep = select_per_class([b['label'] for b in boxes], len(classes),
                                budget, seed)
    else:
        keep = select(boxes, len(classes), budget)
    chosen = [boxes[i] for i in keep]
    outside = Counter()
    for source in sorted({b['source'] for b in chosen}):
        img = mmcv.imread(source, channel_order='bgr')
        if img is None:
            raise FileNotFoundError(f'replay memory: cannot read {source}, '
                                    'an image of the training data')
        for b in (b for b in chosen if b['source'] == source):
            patch, inner = _cut(img, b['box'], margin)
            if patch is None:  # the box lies outside its image
                outside[classes[b['label']]] += 1
                continue
            name = classes[b['label']]
            entry = {'file': _file_name(len(crops), name),
                     'label': b['label'], 'class': name, 'source': source,
                     'box': b['box'], 'box_in_crop': inner}
            mmcv.imwrite(patch, osp.join(out_dir, entry['file']))
            crops.append(entry)
    memory = ReplayMemory(
        osp.abspath(out_dir), classes, crops, budget, margin, seed, min_size,
        SELECTION if select is None else select.description)
    memory.save()
    if outside:
        print_log(f'replay memory: {sum(outside.values())} chosen box(es) '
                  f'lie outside their image and were not cropped (per '
                  f'class: {dict(outside)}); those classes have fewer crops '
                  'than the budget', logger='current', level=logging.WARNING)
    counts = memory.counts()
    print_log(f'replay memory {memory.index_file}: {counts} crops '
              f'(budget {budget} per class, seed {seed})', logger='current')
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        print_log(f'replay memory {memory.index_file}: {len(empty)} of '
                  f'{len(counts)} classes have 0 crops ({empty}): the next '
                  'step replays none of them (no box in the data, or all '
                  'below min_size)', logger='current', level=logging.WARNING)
    return memory
