"""KITTI object detection ``label_2`` txt datasets.

Layout (the KITTI object benchmark)::

    training/image_2/000000.png
    training/label_2/000000.txt    (or 000000.TXT: lower-case first)

Each label line has 15 columns (16 with a score)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y

``x1 y1 x2 y2`` is the 2D box in absolute pixels. ``DontCare`` lines are
regions without labels: they become ignore instances (``ignore_flag=1``,
``bbox_label=-1``). ``truncated`` (0..1), ``occluded`` (0 visible,
1 partly, 2 largely occluded, 3 unknown) and ``alpha`` (observation angle)
are kept as instance keys of the same names.
"""
import math
import os
import os.path as osp
from typing import Dict, List, Optional

from mmdet.registry import DATASETS

from .errors import AnnotationError, BadImageError
from .label_files import pick_label_files
from .native import NativeDetDataset, read_image_size

__all__ = ['KittiDataset', 'parse_kitti_line']

KITTI_CLASSES = ('Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting',
                 'Cyclist', 'Tram', 'Misc')
IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def parse_kitti_line(line: str, path: str, lineno: int) -> Optional[dict]:
    """Split one ``label_2`` line into its typed fields.

    Args:
        line (str): The text line.
        path (str): Label file, for errors.
        lineno (int): 1-based line number, for errors.

    Returns:
        dict | None: ``type``, ``bbox`` (x1, y1, x2, y2), ``truncated``,
        ``occluded`` and ``alpha``; None for a blank line.
    """
    parts = line.split()
    if not parts:
        return None
    if len(parts) not in (15, 16):
        raise AnnotationError(
            path, 'expected 15 columns (type truncated occluded alpha x1 y1 '
            'x2 y2 h w l x y z rotation_y), or 16 with a score, got '
            f'{len(parts)}', lineno)
    try:
        vals = [float(v) for v in parts[1:]]
        occluded = int(parts[2])
    except ValueError:
        raise AnnotationError(path, 'expected numbers after the type (and '
                              f'an integer occluded), got {line.strip()!r}',
                              lineno) from None
    if not all(map(math.isfinite, vals)):
        raise AnnotationError(path, 'nan or inf in the numeric columns',
                              lineno)
    return dict(type=parts[0], bbox=vals[3:7], truncated=vals[0],
                occluded=occluded, alpha=vals[2])


@DATASETS.register_module()
class KittiDataset(NativeDetDataset):
    """KITTI ``label_2`` detection dataset, read in place.

    ``data_prefix=dict(img='training/image_2', ann='training/label_2')``
    relative to ``data_root``. ``ann_file``, if given, lists the frame ids
    to use (one per line, as in the usual ``ImageSets/train.txt``);
    otherwise every label file is used. Default classes are KITTI's eight;
    ``DontCare`` is always an ignore region.
    """

    METAINFO = {
        'classes': KITTI_CLASSES,
        'palette': [(0, 142, 0), (0, 0, 142), (0, 60, 100), (220, 20, 60),
                    (255, 109, 182), (119, 11, 32), (0, 80, 100),
                    (128, 128, 128)]
    }

    def _frame_ids(self, labels: Dict[str, str]) -> List[str]:
        if not self.ann_file:
            return sorted(labels)
        with open(self.ann_file, encoding='utf-8-sig') as f:
            return [line.strip() for line in f if line.strip()]

    def _image_path(self, img_dir: str, frame: str, ann_path: str) -> str:
        for ext in IMG_EXTENSIONS:
            if osp.isfile(osp.join(img_dir, frame + ext)):
                return osp.join(img_dir, frame + ext)
        raise BadImageError(ann_path, f'has no image {frame}'
                              f'{{{",".join(IMG_EXTENSIONS)}}} in {img_dir}')

    def load_raw_data_list(self) -> List[dict]:
        """Parse the label files of every frame.

        Returns:
            list[dict]: One data info per frame.
        """
        img_dir = self.data_prefix.get('img', self.data_root)
        ann_dir = self.data_prefix.get('ann', self.data_root)
        if not osp.isdir(ann_dir):
            raise FileNotFoundError(f'label folder {ann_dir} does not exist')
        # the extension in any case (000001.TXT), as the layout finder
        labels = pick_label_files(
            [n for n in os.listdir(ann_dir) if n.lower().endswith('.txt')],
            ann_dir)
        return self.parse_each(
            self._frame_ids(labels), ann_dir,
            lambda frame: self._parse_frame(img_dir, ann_dir, frame,
                                            labels.get(frame)))

    def _parse_frame(self, img_dir: str, ann_dir: str, frame: str,
                     label: Optional[str]) -> dict:
        ann_path = osp.join(ann_dir, label or frame + '.txt')
        if not osp.isfile(ann_path):
            raise AnnotationError(self.ann_file, f'lists frame {frame!r} '
                                  f'but {ann_path} does not exist')
        img_path = self._image_path(img_dir, frame, ann_path)
        width, height = read_image_size(img_path, ann_path)
        return dict(img_path=img_path, img_id=frame, width=width,
                    height=height, ann_path=ann_path,
                    instances=self._parse_file(ann_path))

    def _parse_file(self, ann_path: str) -> List[dict]:
        try:
            with open(ann_path, encoding='utf-8-sig') as f:
                lines = f.read().splitlines()
        except UnicodeDecodeError as err:
            raise AnnotationError(ann_path,
                                  f'is not UTF-8 text: {err}') from None
        instances = []
        for lineno, line in enumerate(lines, 1):
            obj = parse_kitti_line(line, ann_path, lineno)
            if obj is None:
                continue
            if obj['type'] == 'DontCare':
                label = (-1, 1)
            else:
                label = self.class_label(obj.pop('type'), ann_path, lineno)
                if label is None:
                    continue
            obj.pop('type', None)
            obj.update(bbox_label=label[0], ignore_flag=label[1])
            instances.append(obj)
        return instances
