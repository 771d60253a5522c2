"""Base class for datasets that read a labelling tool's format directly.

Subclasses implement :meth:`NativeDetDataset.load_raw_data_list`, which
returns data infos whose instances carry ``bbox`` (``x1, y1, x2, y2`` in
absolute pixels, possibly outside the image), ``bbox_label``,
``ignore_flag`` and optionally ``mask`` (a list of flat polygons
``[x1, y1, x2, y2, ...]``, mmdet's polygon format). The base class then

- clips boxes to the image and counts them (``clipped_boxes``);
- drops zero-area and inverted boxes with a logged warning and a count per
  file (``dropped_boxes``);
- refuses a class list that leaves a class, or the whole dataset, empty
  (mmdet issues #9610 and #10578), see ``check_classes``;
- keeps images without objects (negative images) unless
  ``filter_cfg=dict(filter_empty_gt=True)``.
"""
from collections import Counter
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

from mmdet.datasets import BaseDetDataset
from mmengine.logging import print_log
from tqdm import tqdm

from .errors import AnnotationError, BadImageError
from .proposals import StrictProposalsMixin
from .shapes import polygon_area, rect_polygon
from .stats import labelled_cat_ids
from .transforms.loading import displayed_size

__all__ = ['NativeDetDataset', 'drop_degenerate', 'read_image_size']

_UNKNOWN_MODES = ('error', 'ignore', 'skip')
_CHECK_MODES = ('error', 'warn', 'off')


def read_image_size(img_path: str, ann_path: str,
                    where: Optional[object] = None) -> Tuple[int, int]:
    """Read ``(width, height)`` from an image header without decoding it.

    A JPEG, TIFF or WebP whose EXIF orientation turns it by 90 degrees
    reports its displayed size, as labelling tools and
    :class:`LoadDomainImageFromFile` see it.

    Args:
        img_path (str): The image file.
        ann_path (str): The annotation file that refers to it, for errors.
        where (object, optional): Line number or key of the reference.
            Defaults to None.

    Returns:
        tuple[int, int]: Width and height in pixels.
    """
    try:
        return displayed_size(img_path)
    except FileNotFoundError:
        raise BadImageError(
            ann_path, f'refers to image {img_path}, which does not exist',
            where) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImageError(
            ann_path, f'image {img_path} cannot be read: {err}',
            where) from None


def drop_degenerate(instances: List[dict], source: str,
                    classes: Sequence[str]) -> Tuple[List[dict], int]:
    """Remove zero-area and inverted boxes, and instances whose polygons
    enclose no area (collinear points: an empty mask, which mmdet's
    ``CocoDataset`` skips too), logging each one.

    Args:
        instances (list[dict]): Instances with ``bbox`` (x1, y1, x2, y2).
        source (str): Annotation file, named in the warnings.
        classes (Sequence[str]): Class names, to name a box's class.

    Returns:
        tuple[list[dict], int]: Kept instances and the number dropped.
    """
    kept = []
    for inst in instances:
        x1, y1, x2, y2 = inst['bbox']
        mask = inst.get('mask')
        flat = isinstance(mask, list) and all(
            isinstance(p, list) for p in mask)  # not an RLE dict
        if x2 > x1 and y2 > y1 and not (flat and polygon_area(mask) <= 0):
            kept.append(inst)
            continue
        label = inst['bbox_label']
        name = classes[label] if 0 <= label < len(classes) else 'ignored'
        what = (f'box {list(inst["bbox"])} (zero area or inverted)'
                if not (x2 > x1 and y2 > y1) else
                f'polygon (zero area) in box {list(inst["bbox"])}')
        print_log(f'{source}: dropped a degenerate {name} {what}',
                  logger='current', level=30)
    return kept, len(instances) - len(kept)


def _boxes_as_polygons(data_list: List[dict]) -> int:
    """Give the box-only instances of a dataset that has polygons their box
    as the polygon, logging how many.

    mmdet's ``LoadAnnotations(with_mask=True)`` needs a ``mask`` on every
    instance (a bare ``KeyError`` otherwise); a YOLO file can mix box and
    polygon lines. A rectangle is what VIA and LabelMe give a box.

    Returns:
        int: The number of instances given one.
    """
    insts = [i for info in data_list for i in info['instances']]
    if not any('mask' in i for i in insts):
        return 0
    bare = [i for i in insts if 'mask' not in i]
    for inst in bare:
        inst['mask'] = [rect_polygon(*inst['bbox'])]
    if bare:
        print_log(f'{len(bare)} of {len(insts)} objects have a box but no '
                  'polygon in a dataset with polygons: their box is their '
                  'mask polygon', logger='current', level=30)
    return len(bare)


class NativeDetDataset(StrictProposalsMixin, BaseDetDataset):
    """Detection dataset read from a labelling tool's native format.

    It takes mmdet's ``BaseDetDataset`` arguments plus the ones below. A
    ``proposal_file`` (Fast R-CNN) is checked against the images by
    :class:`StrictProposalsMixin`.

    Args:
        *args: Positional arguments of mmdet's ``BaseDetDataset``.
        unknown_classes (str): What to do with an object whose class is not
            in the dataset classes: ``'error'`` raises
            :class:`AnnotationError`, ``'ignore'`` keeps it as an ignore
            region (``ignore_flag=1``, ``bbox_label=-1``), ``'skip'`` drops
            it. Ignored and skipped objects are counted per name in
            ``unknown_class_counts`` and logged. Defaults to 'error'.
        check_classes (str): ``'error'`` raises if a class has no instance
            in a training dataset (in ``test_mode`` only a dataset left
            empty by unknown names raises; missing classes are logged),
            ``'warn'`` logs, ``'off'`` does nothing. Defaults to 'error'.
        show_progress (bool): Show a progress bar over the annotation
            files while indexing. Defaults to False.
        on_bad_image (str): ``'error'`` raises :class:`BadImageError` for
            a missing or unreadable image; ``'skip'`` leaves the image out,
            logs it and records it in ``bad_images``. Defaults to 'error'.
        **kwargs: Keyword arguments of mmdet's ``BaseDetDataset``
            (``data_root``, ``ann_file``, ``data_prefix``, ...).
    """

    def __init__(self,
                 *args,
                 unknown_classes: str = 'error',
                 check_classes: str = 'error',
                 show_progress: bool = False,
                 on_bad_image: str = 'error',
                 **kwargs) -> None:
        if on_bad_image not in ('error', 'skip'):
            raise ValueError("on_bad_image must be 'error' or 'skip', got "
                             f'{on_bad_image!r}')
        self.on_bad_image = on_bad_image
        if unknown_classes not in _UNKNOWN_MODES:
            raise ValueError(f'unknown_classes must be one of '
                             f'{_UNKNOWN_MODES}, got {unknown_classes!r}')
        if check_classes not in _CHECK_MODES:
            raise ValueError(f'check_classes must be one of {_CHECK_MODES},'
                             f' got {check_classes!r}')
        self.unknown_classes = unknown_classes
        self.check_classes = check_classes
        self.show_progress = show_progress
        super().__init__(*args, **kwargs)

    def parse_each(self, items: Sequence, desc: str,
                   parse: Callable[[Any], dict]) -> List[dict]:
        """Parse each item, with a progress bar if ``show_progress``.

        With ``on_bad_image='skip'`` an item whose image is missing or
        unreadable (:class:`BadImageError`) is left out and recorded in
        ``bad_images`` (message per image).

        Args:
            items (Sequence): The files or entries to parse.
            desc (str): Label of the progress bar.
            parse (Callable): Turns one item into a data info.

        Returns:
            list[dict]: The data infos.
        """
        out = []
        for item in self.track(items, desc):
            try:
                out.append(parse(item))
            except BadImageError as err:
                if self.on_bad_image == 'error':
                    raise
                self.bad_images[str(err)] = err.problem
                print_log(f'skipped: {err}', logger='current', level=30)
        return out

    def track(self, items: Sequence, desc: str) -> Iterable:
        """Wrap the files to parse in a progress bar if ``show_progress``.

        Args:
            items (Sequence): The files (or entries) to parse.
            desc (str): Label of the bar.

        Returns:
            Iterable: ``items``, possibly wrapped in ``tqdm``.
        """
        if not self.show_progress:
            return items
        return tqdm(items, desc=desc, unit='file')

    def load_raw_data_list(self) -> List[dict]:
        """Parse the annotation files; implemented by each format.

        Returns:
            list[dict]: Data infos with ``img_path``, ``img_id``, ``height``,
            ``width``, ``ann_path`` and ``instances``.
        """
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Parse, clip and clean the annotations, then check the classes.

        Returns:
            list[dict]: Annotation info of each image.
        """
        self.dropped_boxes: Dict[str, int] = {}
        self.clipped_boxes: Dict[str, int] = {}
        self.unknown_class_counts: Counter = Counter()
        # Shapes a format can hold but that are not read as objects (VIA
        # points, LabelMe lines and bitmap masks), counted per shape type.
        self.skipped_shapes: Counter = Counter()
        self._label_map: Optional[Dict[str, int]] = None  # set on first use
        self.bad_images: Dict[str, str] = {}
        data_list = self.load_raw_data_list()
        if not data_list:
            source = self.ann_file or self.data_prefix.get(
                'ann', self.data_prefix.get('img', self.data_root))
            raise AnnotationError(source, f'{type(self).__name__} found no '
                                  'images: check data_root, data_prefix '
                                  'and ann_file')
        classes = self._metainfo['classes']
        for info in data_list:
            self._clip(info)
            kept, dropped = drop_degenerate(
                info['instances'], info['ann_path'], classes)
            if dropped:
                self.dropped_boxes[info['ann_path']] = dropped
            info['instances'] = kept
        _boxes_as_polygons(data_list)
        self._log_summary()
        self._check_classes(data_list)
        return data_list

    def class_label(self, name: str, path: str,
                    where: object) -> Optional[Tuple[int, int]]:
        """Map a class name to ``(bbox_label, ignore_flag)``.

        Args:
            name (str): The class name found in the annotation.
            path (str): The annotation file, for errors.
            where (object): Line number or key, for errors.

        Returns:
            tuple[int, int] | None: Label and ignore flag, or None if the
            object is to be skipped (``unknown_classes='skip'``).
        """
        if self._label_map is None:
            self._label_map = {
                c: i for i, c in enumerate(self._metainfo['classes'])}
        label = self._label_map.get(name)
        if label is not None:
            return label, 0
        classes = self._metainfo['classes']
        if self.unknown_classes == 'error':
            raise AnnotationError(
                path, f'class {name!r} is not in the dataset classes '
                f'{tuple(classes)}. Class names are case-sensitive; fix the '
                'file, set metainfo=dict(classes=...), or set '
                "unknown_classes='ignore' or 'skip'.", where)
        self.unknown_class_counts[name] += 1
        return (-1, 1) if self.unknown_classes == 'ignore' else None

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels of the non-ignored instances of image ``idx`` (for
        ``ClassBalancedDataset`` and ``ClassAwareSampler``); ignore regions
        (label -1) are left out, see :func:`labelled_cat_ids`.

        Args:
            idx (int): Image index.

        Returns:
            list[int]: Labels.
        """
        return labelled_cat_ids(self.get_data_info(idx)['instances'])

    def _clip(self, info: dict) -> None:
        w, h = info['width'], info['height']
        clipped = 0
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
                continue  # inside (inverted boxes are dropped later)
            box = [min(max(x1, 0), w), min(max(y1, 0), h),
                   min(max(x2, 0), w), min(max(y2, 0), h)]
            if box != [x1, y1, x2, y2]:
                clipped += 1
            inst['bbox'] = box
        if clipped:
            self.clipped_boxes[info['ann_path']] = clipped

    def _log_summary(self) -> None:
        name = type(self).__name__
        for what, counts in (('clipped', self.clipped_boxes),
                             ('dropped zero-area or inverted',
                              self.dropped_boxes)):
            if counts:
                print_log(f'{name}: {what} {sum(counts.values())} box(es) '
                          f'in {len(counts)} file(s)', logger='current',
                          level=30)
        if self.unknown_class_counts:
            print_log(f'{name}: {self.unknown_classes} objects of classes '
                      f'not in METAINFO: {dict(self.unknown_class_counts)}',
                      logger='current', level=30)
        if self.skipped_shapes:
            print_log(f'{name}: skipped {sum(self.skipped_shapes.values())} '
                      'shape(s) that are not read as objects, per type: '
                      f'{dict(self.skipped_shapes)} (see the reader\'s '
                      'docstring; convert them to polygons or boxes to '
                      'train on them)', logger='current', level=30)

    def _check_classes(self, data_list: List[dict]) -> None:
        if self.check_classes == 'off':
            return
        classes = self._metainfo['classes']
        counts = Counter(inst['bbox_label'] for info in data_list
                         for inst in info['instances']
                         if not inst['ignore_flag'])
        empty = [c for i, c in enumerate(classes) if not counts[i]]
        if not empty:
            return
        msg = (f'{type(self).__name__}: classes {empty} of {tuple(classes)}'
               f' have no instance in {len(data_list)} image(s) under '
               f'{self.data_root or self.ann_file!r}')
        if self.unknown_class_counts:
            msg += (f'; the annotations hold other class names '
                    f'{dict(self.unknown_class_counts)}')
        if self.skipped_shapes:
            msg += ('; shapes not read as objects were skipped: '
                    f'{dict(self.skipped_shapes)}')
        fatal = self.check_classes == 'error' and (
            not self.test_mode
            or (len(empty) == len(classes) and self.unknown_class_counts))
        if fatal:
            raise ValueError(
                msg + '. Check metainfo=dict(classes=...) against the '
                "annotations, or set check_classes='warn' if this is "
                'intended.')
        print_log(msg, logger='current', level=30)

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg``: ``filter_empty_gt`` and ``min_size``.

        By default (``filter_cfg=None``) every image is kept, including
        images without objects. ``filter_empty_gt=True`` drops images
        without a non-ignored instance (not in ``test_mode``).

        Returns:
            list[dict]: The kept data infos.
        """
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        return [
            info for info in self.data_list
            if min(info['width'], info['height']) >= min_size and not (
                empty_gt and all(i['ignore_flag'] for i in info['instances']))
        ]
