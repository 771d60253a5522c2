"""CSV box tables: one row per box, with a header line.

Example (``../shared/datasets/bcd/annotations.csv``)::

    image_id,image,xmin,ymin,xmax,ymax,label
    100,image-100.png,0.0,0.0,0.0984,0.1594,rbc

Columns are found by their header, compared case-insensitively with
spaces and dashes read as underscores (:data:`COLUMN_NAMES`, first match
wins; ``columns=`` names them explicitly):

- image: ``filename``, ``file_name``, ``image_path``, ``image``, ...
- box corners ``x1, y1, x2, y2``: ``xmin``/``x_min``/``x1``/``left``,
  ``ymin``/``y_min``/``y1``/``top``, ``xmax``/``x_max``/``x2``/``right``,
  ``ymax``/``y_max``/``y2``/``bottom``;
- class (optional): ``label``, ``class``, ``class_name``, ``category``...
  Without one, every box is of the dataset's single class.

Coordinates are absolute pixels or normalised to [0, 1] (multiplied by
the image width and height). ``normalized=None`` decides from the file:
if every coordinate is at most 1.01 (1 plus rounding), the file is read
as normalised, otherwise as pixels. The delimiter (``,``, ``;`` or tab)
is read from the header line.

Images are the ones the CSV names, in order of first appearance; an
image on disk that no row names is not used. A row with an image name and
empty box and class cells marks a negative image (no objects), the usual
convention of CSV exports that keep negatives. Rows with a missing image
or an unparseable number are errors naming the CSV file and line
(``on_bad_image='skip'`` skips and counts images that are missing).
"""
import csv
import logging
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .errors import AnnotationError
from .native import NativeDetDataset, read_image_size

__all__ = ['CSVDataset', 'COLUMN_NAMES', 'match_columns']

COLUMN_NAMES = dict(
    image=('filename', 'file_name', 'image_path', 'image', 'image_name',
           'image_file', 'img_path', 'img', 'img_name', 'imagename', 'path',
           'file', 'image_filename'),
    xmin=('xmin', 'x_min', 'x1', 'left', 'bbox_x1', 'xmin_px'),
    ymin=('ymin', 'y_min', 'y1', 'top', 'bbox_y1', 'ymin_px'),
    xmax=('xmax', 'x_max', 'x2', 'right', 'bbox_x2', 'xmax_px'),
    ymax=('ymax', 'y_max', 'y2', 'bottom', 'bbox_y2', 'ymax_px'),
    label=('label', 'class', 'class_name', 'classname', 'label_name',
           'category', 'category_name', 'name', 'cls', 'object', 'type'))
_BOX = ('xmin', 'ymin', 'xmax', 'ymax')
_NORMALISED_MAX = 1.01


def _norm(name: str) -> str:
    return name.strip().lower().replace(' ', '_').replace('-', '_')


def match_columns(header: Sequence[str],
                  columns: Optional[Dict[str, str]] = None
                  ) -> Dict[str, Optional[int]]:
    """Find the column index of each role from a header line.

    Args:
        header (Sequence[str]): The header cells.
        columns (dict[str, str], optional): Role (``image``, ``xmin``,
            ``ymin``, ``xmax``, ``ymax``, ``label``) to header name, for
            headers that the usual spellings miss. Defaults to None.

    Returns:
        dict[str, int | None]: Role to column index; None where absent.
    """
    cells = [_norm(c) for c in header]
    found: Dict[str, Optional[int]] = {}
    for role, names in COLUMN_NAMES.items():
        if columns and role in columns:
            names = (_norm(columns[role]), )
        found[role] = next((cells.index(n) for n in names if n in cells),
                           None)
    return found


def sniff_delimiter(line: str) -> str:
    """The most frequent of ``,``, ``;`` and tab in a header line.

    Args:
        line (str): The header line.

    Returns:
        str: The delimiter.
    """
    return max((',', ';', '\t'), key=line.count)


@DATASETS.register_module()
class CSVDataset(NativeDetDataset):
    """Detection boxes from a CSV table, one row per box.

    ``ann_file`` is the CSV; images are ``data_prefix['img']`` joined with
    the image column (defaults to the CSV's folder). Classes: the label
    column's values, sorted, unless ``metainfo=dict(classes=...)`` is
    given; without a label column the dataset has one class (``'object'``
    unless given).

    Args:
        *args: Positional arguments of mmdet's ``BaseDetDataset``.
        columns (dict[str, str], optional): Role to header name, overriding
            the detection (roles ``image``, ``xmin``, ``ymin``, ``xmax``,
            ``ymax``, ``label``). Defaults to None.
        normalized (bool, optional): Coordinates are normalised to [0, 1]
            (True) or pixels (False); None decides from the file (all at
            most 1.01 means normalised). Defaults to None.
        delimiter (str, optional): Cell separator; None reads it from the
            header line. Defaults to None.
        class_map (dict[str, str], optional): File label to dataset class,
            e.g. ``dict(rbc='RBC', wbc='WBC')`` to read another dataset's
            labels as the source's classes; labels not named pass through.
            A key that is no label of the file, a value that is no dataset
            class, or no class in common is an :class:`AnnotationError`
            naming both lists. Defaults to None.
        **kwargs: Keyword arguments of :class:`NativeDetDataset`
            (``data_root``, ``ann_file``, ``data_prefix``, ...).
    """

    METAINFO = {'classes': ()}

    def __init__(self, *args, columns: Optional[Dict[str, str]] = None,
                 normalized: Optional[bool] = None,
                 delimiter: Optional[str] = None,
                 class_map: Optional[Dict[str, str]] = None,
                 **kwargs) -> None:
        unknown = set(columns or {}) - set(COLUMN_NAMES)
        if unknown:
            raise ValueError(f'columns has unknown roles {sorted(unknown)}; '
                             f'the roles are {list(COLUMN_NAMES)}')
        if normalized not in (None, True, False):
            raise TypeError(f'normalized must be None, True or False, got '
                            f'{normalized!r}')
        self.columns = columns
        self.normalized = normalized
        self.delimiter = delimiter
        self.class_map = dict(class_map or {})
        super().__init__(*args, **kwargs)

    def load_raw_data_list(self) -> List[dict]:
        """Read the CSV and group its rows by image.

        Returns:
            list[dict]: One data info per image, in order of first row.
        """
        path = self.ann_file
        rows, has_label = self._read_rows(path)
        self._set_classes(rows, has_label, path)
        boxes = [r for r in rows if r[2] is not None]
        normalized = self._is_normalized(boxes, path)
        groups: Dict[str, List[tuple]] = {}
        for row in rows:  # 'a.png', './a.png' and 'sub\\a.png' alike
            image = osp.normpath(row[1].replace('\\', '/'))
            groups.setdefault(image, []).append(row)
        img_dir = self.data_prefix.get('img') or osp.dirname(path)
        return self.parse_each(
            list(groups.items()), path,
            lambda item: self._parse_image(path, img_dir, normalized, *item))

    def _read_rows(self, path: str) -> Tuple[List[tuple], bool]:
        """Rows as ``(line, image, box or None, label or None)``."""
        try:
            with open(path, encoding='utf-8-sig', newline='') as f:
                text = f.read()
        except UnicodeDecodeError as err:
            raise AnnotationError(path, f'is not UTF-8 text: {err}') from None
        if not text.strip():
            raise AnnotationError(path, 'is empty: expected a header line '
                                  'such as image,xmin,ymin,xmax,ymax,label')
        delimiter = self.delimiter or sniff_delimiter(text.splitlines()[0])
        reader = csv.reader(text.splitlines(), delimiter=delimiter)
        header = next(reader)
        cols = match_columns(header, self.columns)
        missing = [r for r in ('image', ) + _BOX if cols[r] is None]
        if missing:
            raise AnnotationError(
                path, f'the header {header} has no column for {missing}; '
                'name them with columns=dict(image=..., xmin=..., ...)', 1)
        rows = []
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append(self._parse_row(path, reader.line_num, cells,
                                            cols))
        return rows, cols['label'] is not None

    def _parse_row(self, path: str, line: int, cells: List[str],
                   cols: Dict[str, Optional[int]]) -> tuple:
        used = [i for i in cols.values() if i is not None]
        if len(cells) <= max(used):
            raise AnnotationError(path, f'expected {max(used) + 1} cells, '
                                  f'got {len(cells)}: {cells}', line)
        image = cells[cols['image']].strip()
        if not image:
            raise AnnotationError(path, 'the image cell is empty', line)
        label = cells[cols['label']].strip() if cols['label'] is not None \
            else None
        raw = [cells[cols[r]].strip() for r in _BOX]
        if not any(raw) and not label:
            return line, image, None, None  # a negative image
        try:
            box = [float(v) for v in raw]
        except ValueError:
            raise AnnotationError(path, f'expected 4 numbers for xmin, ymin,'
                                  f' xmax, ymax, got {raw}', line) from None
        if not all(map(math.isfinite, box)):
            raise AnnotationError(path, f'coordinates must be finite, got '
                                  f'{raw}', line)
        if label is not None and not label:
            raise AnnotationError(path, 'a box without a class: the label '
                                  'cell is empty', line)
        return line, image, box, label

    def _set_classes(self, rows: List[tuple], has_label: bool,
                     path: str) -> None:
        classes = self._metainfo.get('classes')
        if not has_label and classes and len(classes) != 1:
            raise AnnotationError(
                path, 'has no label column, so every box is of one class, '
                f'but the dataset classes are {tuple(classes)}', 1)
        labels = sorted({r[3] for r in rows if r[3]})
        mapped = sorted({self.class_map.get(n, n) for n in labels})
        if self.class_map:
            self._check_class_map(labels, classes or mapped, path)
        if not classes:
            self._metainfo['classes'] = tuple(mapped) if has_label \
                else ('object', )
            if has_label:
                print_log(
                    f'{path}: no metainfo classes, so the classes are this '
                    f"file's labels, sorted: {tuple(mapped)}. A val or test "
                    'file read on its own may lack a class and number the '
                    'others differently from training: give every split '
                    'metainfo=dict(classes=...)', logger='current',
                    level=logging.WARNING)
        elif labels and not set(mapped) & set(classes):
            raise AnnotationError(
                path, f'no class in common: the file\'s labels {labels} '
                f'(after class_map {mapped}) and the dataset classes '
                f'{list(classes)}; map them with class_map=dict(...)')

    def _check_class_map(self, labels: List[str], classes: Sequence[str],
                         path: str) -> None:
        """Every key is a file label and every value a dataset class."""
        keys = sorted(set(self.class_map) - set(labels))
        if keys:
            raise AnnotationError(
                path, f'class_map names {keys}, which are not labels of '
                f'the file; its labels are {labels}')
        values = sorted(set(self.class_map.values()) - set(classes))
        if values:
            raise AnnotationError(
                path, f'class_map maps onto {values}, which are not '
                f'dataset classes; the classes are {list(classes)}')

    def _is_normalized(self, boxes: List[tuple], path: str) -> bool:
        top = max((max(r[2]) for r in boxes), default=0.0)
        if self.normalized is None:
            normalized = bool(boxes) and top <= _NORMALISED_MAX
            unit = sum(max(r[2]) <= _NORMALISED_MAX for r in boxes)
            if not normalized and unit * 2 > len(boxes):
                # read as pixels, most boxes would be in the corner pixel
                line = next(r[0] for r in boxes if max(r[2]) == top)
                raise AnnotationError(
                    path, f'{unit} of {len(boxes)} boxes lie within [0, 1] '
                    f'(normalised) but this row has coordinate {top:g}: '
                    'fix the row, or set normalized=True / False', line)
            print_log(f'{path}: coordinates read as '
                      f'{"normalised to [0, 1]" if normalized else "pixels"}'
                      f' (largest {top:g}); set normalized= to choose',
                      logger='current')
            return normalized
        if self.normalized and top > _NORMALISED_MAX:
            line = next(r[0] for r in boxes if max(r[2]) == top)
            raise AnnotationError(path, f'coordinate {top:g} is above 1, '
                                  'but normalized=True', line)
        return self.normalized

    def _parse_image(self, path: str, img_dir: str, normalized: bool,
                     image: str, rows: List[tuple]) -> dict:
        img_path = osp.join(img_dir, image)
        width, height = read_image_size(img_path, path, rows[0][0])
        sx, sy = (width, height) if normalized else (1, 1)
        instances = []
        for line, _, box, label in rows:
            if box is None:
                continue
            cls = (0, 0) if label is None else self.class_label(
                self.class_map.get(label, label), path, line)
            if cls is None:
                continue
            instances.append(dict(
                bbox=[box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy],
                bbox_label=cls[0], ignore_flag=cls[1]))
        return dict(img_path=img_path, img_id=image, width=width,
                    height=height, ann_path=path, instances=instances)
