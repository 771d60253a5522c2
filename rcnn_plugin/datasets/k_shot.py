"""K-shot selection of annotated instances, following TFA's protocol.

TFA (Wang et al. 2020, ``prepare_coco_few_shot.py`` / ``prepare_voc_few_shot
.py``) samples, per class and per seed, images containing the class until
the class has exactly K instances; in an image picked for class ``c`` only
the ``c`` instances are annotations.
"""
import json
import random
from typing import Dict, List, Sequence

from ..utils.fileio import atomic_open

Selection = Dict[int, Dict[int, List[int]]]


def instances_by_class(infos: Sequence[dict],
                       num_classes: int) -> List[Dict[int, List[int]]]:
    """Per class: image position -> indices of its non-ignored instances.

    Args:
        infos (Sequence[dict]): mmdet data infos (``instances`` with
            ``bbox_label`` and ``ignore_flag``).
        num_classes (int): Number of classes; labels outside
            ``[0, num_classes)`` are skipped (other-class instances).

    Returns:
        list[dict[int, list[int]]]: One dict per class.
    """
    per_class: List[Dict[int, List[int]]] = [{} for _ in range(num_classes)]
    for pos, info in enumerate(infos):
        for j, inst in enumerate(info.get('instances', [])):
            label = inst['bbox_label']
            if inst.get('ignore_flag', 0) or not 0 <= label < num_classes:
                continue
            per_class[label].setdefault(pos, []).append(j)
    return per_class


def select_class(candidates: Dict[int, List[int]], shots: int,
                 rng: random.Random) -> Dict[int, List[int]]:
    """Pick images (and instances) holding exactly ``shots`` instances.

    Images are visited in random order and taken whole while they fit the
    remaining budget (TFA). When only images with more instances than the
    budget are left (dense classes: a BCCD smear has ~15 RBC), a random
    subset of one such image's instances completes the K.

    Args:
        candidates (dict[int, list[int]]): Image position -> instance
            indices of the class. Must hold at least ``shots`` in total.
        shots (int): K.
        rng (random.Random): Random source.

    Returns:
        dict[int, list[int]]: Chosen image position -> chosen instances.
    """
    order = sorted(candidates)
    rng.shuffle(order)
    chosen, need = {}, shots
    for pos in order:
        if need == 0:
            break
        if len(candidates[pos]) <= need:
            chosen[pos] = list(candidates[pos])
            need -= len(candidates[pos])
    if need:
        pos = next(p for p in order if p not in chosen)
        chosen[pos] = sorted(rng.sample(candidates[pos], need))
    return chosen


def sample_k_shot(infos: Sequence[dict], classes: Sequence[str], shots: int,
                  seed: int) -> Selection:
    """Exactly ``shots`` instances per class, reproducible by ``seed``.

    Each class draws from its own ``random.Random`` seeded with
    ``(seed, class name)``, so a class's pick does not depend on the others.

    Args:
        infos (Sequence[dict]): mmdet data infos.
        classes (Sequence[str]): Class names; ``bbox_label`` indexes them.
        shots (int): K, at least 1.
        seed (int): Seed.

    Returns:
        dict[int, dict[int, list[int]]]: Class index -> image position ->
        instance indices.

    Raises:
        ValueError: If ``shots < 1`` or a class has fewer than ``shots``
            instances (naming the class and its count).
    """
    if not isinstance(shots, int) or shots < 1:
        raise ValueError(f'shots must be a positive int, got {shots!r}')
    per_class = instances_by_class(infos, len(classes))
    short = {name: sum(map(len, per_class[c].values()))
             for c, name in enumerate(classes)
             if sum(map(len, per_class[c].values())) < shots}
    if short:
        detail = ', '.join(f'{n!r} has {k}' for n, k in short.items())
        raise ValueError(f'K={shots} shots requested but {detail} annotated '
                         'instance(s) in the dataset')
    return {c: select_class(per_class[c], shots,
                            random.Random(f'{seed}-{name}'))
            for c, name in enumerate(classes)}


def save_split(path: str, selection: Selection, infos: Sequence[dict],
               classes: Sequence[str], shots: int, seed: int) -> None:
    """Write a selection as JSON (image ids and instance indices per class).

    Args:
        path (str): Output ``.json`` file.
        selection (dict): As :func:`sample_k_shot` returns.
        infos (Sequence[dict]): The data infos it indexes.
        classes (Sequence[str]): Class names.
        shots (int): K.
        seed (int): Seed.
    """
    split = dict(shots=shots, seed=seed, classes=list(classes), images={})
    for c, name in enumerate(classes):
        split['images'][name] = [
            dict(img_id=infos[pos]['img_id'],
                 img_path=infos[pos].get('img_path'), instances=inds)
            for pos, inds in sorted(selection[c].items())
        ]
    # Atomic: a half-written split would be read (not redrawn) next time.
    with atomic_open(path) as f:
        json.dump(split, f, indent=1)


def load_split(path: str, infos: Sequence[dict], classes: Sequence[str],
               shots: int, seed: int) -> Selection:
    """Read a split written by :func:`save_split` and check it.

    Args:
        path (str): The ``.json`` file.
        infos (Sequence[dict]): Data infos of the dataset to index.
        classes (Sequence[str]): Expected class names.
        shots (int): Expected K.
        seed (int): Expected seed.

    Returns:
        dict: As :func:`sample_k_shot` returns.

    Raises:
        ValueError: If the file was made for other classes, K or seed,
            names an image or instance the dataset does not have, or gives
            a class other than K instances.
    """
    try:
        with open(path) as f:
            split = json.load(f)
        split['images'].items()
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f'{path} is not a K-shot split file ({type(err).__name__}: '
            f'{err}); delete it to draw the split again, or point '
            'split_file elsewhere') from None
    for key, want in (('classes', list(classes)), ('shots', shots),
                      ('seed', seed)):
        if split.get(key) != want:
            raise ValueError(f'{path}: {key} is {split.get(key)!r}, but the '
                             f'dataset asks for {want!r}; delete the file '
                             'or point split_file elsewhere')
    by_id = {str(info['img_id']): pos for pos, info in enumerate(infos)}
    selection: Selection = {}
    for c, name in enumerate(classes):
        selection[c] = {}
        for entry in split['images'].get(name, []):
            pos = by_id.get(str(entry['img_id']))
            insts = infos[pos]['instances'] if pos is not None else []
            bad = [j for j in entry['instances'] if not (
                0 <= j < len(insts) and insts[j]['bbox_label'] == c)]
            if pos is None or bad:
                raise ValueError(
                    f'{path}: image {entry["img_id"]!r} (class {name!r}) is '
                    'not in the dataset or has no such instances '
                    f'{bad or entry["instances"]}')
            ignored = [j for j in entry['instances']
                       if insts[j].get('ignore_flag')]
            repeated = len(set(entry['instances'])) != \
                len(entry['instances']) or pos in selection[c]
            if ignored or repeated:
                raise ValueError(
                    f'{path}: image {entry["img_id"]!r} (class {name!r}) '
                    + (f'lists instances {ignored} that the dataset marks '
                       'ignored' if ignored else 'repeats an instance or '
                       'the image') + '; a K-shot split needs K distinct, '
                    'labelled instances')
            selection[c][pos] = list(entry['instances'])
        total = sum(map(len, selection[c].values()))
        if total != shots:
            raise ValueError(f'{path}: class {name!r} has {total} '
                             f'instances, not the K={shots} of the split')
    return selection
