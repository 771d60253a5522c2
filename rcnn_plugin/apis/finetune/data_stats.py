"""What the one-command fine-tune reads from the data before choosing.

Boxes are ``x1, y1, x2, y2`` in absolute pixels of the original image.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'DataStats', 'collect_stats', 'deep_image_loader', 'deep_images',
    'default_epochs', 'pick_img_scale', 'scale_for_long',
    'small_object_warning'
]

# Faster R-CNN's smallest anchor: scale 8 at the stride-4 FPN level.
SMALLEST_ANCHOR = 32
# A small-object share above this is worth a warning.
SMALL_SHARE_WARN = 0.1


@dataclass
class DataStats:
    """Image and box sizes of a training set.

    Attributes:
        img_sizes (list[tuple[int, int]]): ``(width, height)`` per image.
        box_sizes (list[tuple[float, float]]): ``(width, height)`` per
            non-ignored box, in original pixels.
        box_labels (list[int]): Label per box of ``box_sizes``.
        img_paths (list[str]): The image files.
        box_images (list[int]): Index in ``img_sizes`` of each box's
            image (empty: the boxes' images are unknown).
    """
    img_sizes: List[Tuple[int, int]] = field(default_factory=list)
    box_sizes: List[Tuple[float, float]] = field(default_factory=list)
    box_labels: List[int] = field(default_factory=list)
    box_images: List[int] = field(default_factory=list)
    img_paths: List[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        """int: Number of images."""
        return len(self.img_sizes)


def collect_stats(data_infos: Sequence[dict]) -> DataStats:
    """Collect image and box sizes from mmdet data infos.

    Args:
        data_infos (Sequence[dict]): Data infos with ``width``, ``height``
            and ``instances`` (``bbox``, ``bbox_label``, ``ignore_flag``).

    Returns:
        DataStats: The sizes.
    """
    stats = DataStats()
    for info in data_infos:
        stats.img_sizes.append((int(info['width']), int(info['height'])))
        if info.get('img_path'):
            stats.img_paths.append(info['img_path'])
        for inst in info.get('instances', []):
            if inst.get('ignore_flag', 0):
                continue
            x1, y1, x2, y2 = inst['bbox']
            stats.box_sizes.append((x2 - x1, y2 - y1))
            stats.box_labels.append(int(inst['bbox_label']))
            stats.box_images.append(len(stats.img_sizes) - 1)
    return stats


def _median_size(stats: DataStats) -> Tuple[int, int]:
    """Median long and short image side."""
    longs = [max(w, h) for w, h in stats.img_sizes]
    shorts = [min(w, h) for w, h in stats.img_sizes]
    return int(np.median(longs)), int(np.median(shorts))


def scale_for_long(stats: DataStats, long_side: int) -> Tuple[int, int]:
    """The ``(long, short)`` scale of a given long side.

    The short side keeps the median image's ratio, raised so that the
    squarest image is limited by its long side only: with the median short
    side, mmdet's keep-ratio ``Resize`` shrank square images among wide
    ones (1242x375 with 1000x1000: the squares to 375x375).
    """
    med_long, med_short = _median_size(stats)
    squarest = max(min(w, h) / max(w, h) for w, h in stats.img_sizes)
    return long_side, int(round(long_side * max(med_short / med_long,
                                                squarest)))


def pick_img_scale(stats: DataStats,
                   min_long: int = 512,
                   max_long: int = 1333,
                   large_object: float = 96.0
                   ) -> Tuple[Tuple[int, int], str]:
    """Choose the ``Resize`` scale from the images and their boxes.

    The median image keeps its size when its long side lies in
    ``[min_long, max_long]``, and is scaled into that range otherwise. The
    short side of the scale is large enough for the squarest image to be
    limited by its long side (mixed shapes are not shrunk by the median
    short side).
    When even the small objects are large (the 10th percentile of the
    boxes' short side is above ``large_object`` pixels after that), the
    image is scaled down until they are ``large_object`` pixels, but not
    below ``min_long``: large objects need no large input, and a CPU step
    costs about the pixel count.

    Args:
        stats (DataStats): Sizes of the training set.
        min_long (int): Smallest long side. Defaults to 512.
        max_long (int): Largest long side (mmdet's 1333). Defaults to 1333.
        large_object (float): Short side, in input pixels, above which
            small objects count as large. Defaults to 96.

    Returns:
        tuple[tuple[int, int], str]: ``(long, short)`` for mmdet's
        ``Resize(scale=..., keep_ratio=True)``, and the reason in words.
    """
    if not stats.img_sizes:
        raise ValueError('no images to choose an image size from')
    long_side, short_side = _median_size(stats)
    factor = min(max(1.0, min_long / long_side), max_long / long_side)
    why = f'median image {long_side}x{short_side}'
    if stats.box_sizes:
        p10 = float(np.percentile([min(b) for b in stats.box_sizes], 10))
        smaller = max(large_object / max(p10, 1e-6), min_long / long_side)
        if smaller < factor * 0.99:
            factor = smaller
            why += (f', objects large (10th percentile short side '
                    f'{p10:.0f} px)')
    scale = scale_for_long(stats, int(round(long_side * factor)))
    if abs(factor - 1) > 1e-3:
        why += f', scaled by {factor:.2f}'
    return scale, why


def _box_factors(stats: DataStats, scale: Tuple[int, int]) -> np.ndarray:
    """The factor mmdet's keep-ratio ``Resize`` gives each box's image at
    ``scale`` (the long side to the longer of the scale's sides unless the
    short side reaches the shorter first); the median image's for all
    boxes when their images are unknown."""
    big, small = max(scale), min(scale)
    if len(stats.box_images) != len(stats.box_sizes):
        long_side, short_side = _median_size(stats)
        return np.full(len(stats.box_sizes),
                       min(big / long_side, small / short_side))
    sizes = np.array(stats.img_sizes, dtype=float)[stats.box_images]
    return np.minimum(big / sizes.max(1), small / sizes.min(1))


def small_object_warning(stats: DataStats,
                         scale: Tuple[int, int],
                         smallest_anchor: int = SMALLEST_ANCHOR
                         ) -> Optional[str]:
    """Warn when many boxes are smaller than the smallest anchor.

    A box counts as small when the square root of its area, at the input
    scale, is under half the smallest anchor's side: its best IoU with an
    anchor of that side is then below 0.25, under the RPN's 0.3 negative
    threshold, so it gets no positive anchor.

    Args:
        stats (DataStats): Sizes of the training set.
        scale (tuple[int, int]): The chosen ``(long, short)`` scale.
        smallest_anchor (int): Side of the smallest anchor in input
            pixels. Defaults to 32.

    Returns:
        str | None: The warning, or None.
    """
    if not stats.box_sizes:
        return None
    sides = np.sqrt([max(w * h, 0.0) for w, h in stats.box_sizes])
    sides = sides * _box_factors(stats, scale)
    share = float(np.mean(sides < smallest_anchor / 2))
    if share <= SMALL_SHARE_WARN:
        return None
    need = smallest_anchor / 2 / max(float(np.percentile(sides, 10)), 1e-6)
    return (f'{share:.0%} of the training boxes are under '
            f'{smallest_anchor // 2} px (sqrt of the area) at the input '
            f'scale {scale}, too small for the smallest anchor '
            f'({smallest_anchor} px) to match them. Enlarge the input '
            f'(--img-size {int(math.ceil(scale[0] * need / 32) * 32)}) or '
            'use smaller anchors (--cfg-options '
            'model.rpn_head.anchor_generator.scales=[4]).')


def default_epochs(num_images: int, batch_size: int,
                   min_iters: int = 400, min_epochs: int = 8,
                   max_epochs: int = 60) -> int:
    """Epochs so that a small dataset still gets ``min_iters`` steps.

    Args:
        num_images (int): Training images.
        batch_size (int): Images per step.
        min_iters (int): Training steps to reach at least. Defaults to 400
            (BCCD's 8 epochs of 52 steps is 416).
        min_epochs (int): Fewest epochs. Defaults to 8.
        max_epochs (int): Most epochs. Defaults to 60.

    Returns:
        int: The number of epochs.
    """
    if num_images <= 0 or batch_size <= 0:
        raise ValueError('num_images and batch_size must be positive, got '
                         f'{num_images} and {batch_size}')
    iters = math.ceil(num_images / batch_size)
    return int(min(max(math.ceil(min_iters / iters), min_epochs),
                   max_epochs))


# PIL modes of more than 8 bits per sample (16-bit grey PNG / TIFF, 32-bit
# integer or float TIFF), which mmdet's loader cuts to 8 bits.
_DEEP_MODES = ('I;16', 'I;16B', 'I;16L', 'I', 'F')


def deep_images(paths: Sequence[str],
                sample: int = 20) -> Tuple[int, int]:
    """How many of the first ``sample`` images hold more than 8 bits per
    sample (read from the file headers), of how many read.

    Args:
        paths (Sequence[str]): Image files.
        sample (int): How many to look at. Defaults to 20.

    Returns:
        tuple[int, int]: The deep ones and the readable ones looked at.
    """
    from PIL import Image
    count = looked = 0
    for path in list(paths)[:sample]:
        try:
            with Image.open(path) as img:
                count += img.mode in _DEEP_MODES
                looked += 1
        except OSError:  # unreadable: the data check names it
            continue
    return count, looked


def deep_image_loader(paths: Sequence[str]) -> Tuple[bool, Optional[str]]:
    """Whether to read the images with ``LoadDomainImageFromFile`` and a
    per-image 1-99 % window, and the line that says so.

    All images looked at hold more than 8 bits per sample: yes. Only some:
    no (the window would stretch the 8-bit ones), with a warning.

    Args:
        paths (Sequence[str]): Image files.

    Returns:
        tuple[bool, str | None]: The choice and a line for the user.
    """
    deep, looked = deep_images(paths)
    if not deep:
        return False, None
    head = (f'{deep} of {looked} images looked at hold more than 8 bits '
            'per sample: ')
    if deep == looked:
        return True, head + 'read with LoadDomainImageFromFile, window 1-99 %'
    return False, head + ("WARNING: mixed bit depths, read with mmdet's "
                          '8-bit loader; choose a loader with --cfg-options')
