"""Pascal VOC XML datasets that refuse to lose data silently.

mmdet's ``XMLDataset`` skips objects whose class is not in METAINFO (a typo
gives an empty dataset without a word) and keeps degenerate boxes, which
turn ``loss_bbox`` into NaN. :class:`StrictXMLDataset` raises on unknown
class names, naming the XML file, and drops zero-area or inverted boxes with
a warning per box and a count per dataset.

It also reads what labelling tools write besides the VOC devkit layout:

- images of any type: the image is ``<filename>`` from the XML (its base
  name, in ``img_subdir``); if that is absent or does not exist,
  ``<id>.jpg``, then ``<id>.<any image extension>`` found in the folder;
- no split list (LabelImg): with ``ann_file=''`` every ``*.xml`` in
  ``ann_subdir`` is read, sorted by name;
- no ``<size>`` (or a zero size): the size is read from the image header.

A ``<size>`` that disagrees with the image's header (a resized image with
its old XML) is an :class:`AnnotationError`: the boxes would not fit.
"""
import math
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

from mmdet.datasets import XMLDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path, list_from_file
from mmengine.logging import print_log

from .errors import AnnotationError, BadImageError
from .native import drop_degenerate, read_image_size

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class UnknownClassError(KeyError):
    """An annotation names a class that is not in the dataset's METAINFO."""


@DATASETS.register_module()
class StrictXMLDataset(XMLDataset):
    """XML (Pascal VOC) dataset with loud validation.

    It takes the same arguments as mmdet's ``XMLDataset``
    (``img_subdir``, ``ann_subdir``, ``data_prefix=dict(sub_data_root=)``);
    ``ann_file`` may be ``''`` to read every XML file of ``ann_subdir``.
    After ``full_init``, ``dropped_boxes`` maps ``'<xml file>'`` to the
    number of degenerate boxes removed from it.
    """

    def load_data_list(self) -> List[dict]:
        """Load annotations and report degenerate boxes once per dataset.

        Returns:
            list[dict]: Annotation info of each image.
        """
        if not self._metainfo.get('classes'):
            raise ValueError(f'{type(self).__name__} needs metainfo=dict('
                             'classes=(...)): VOC files carry no class list')
        self.cat2label = {c: i for i, c in enumerate(self._metainfo[
            'classes'])}
        self.dropped_boxes: Dict[str, int] = {}
        self._stems: Dict[str, Dict[str, str]] = {}
        ann_dir = osp.join(self.sub_data_root, self.ann_subdir)
        self._xml_names: Dict[str, str] = {}  # stem -> name (a.XML)
        data_list = [
            self.parse_data_info(dict(
                img_id=img_id, xml_path=osp.join(ann_dir, self._xml_names.get(
                    img_id, f'{img_id}.xml')),
                file_name=osp.join(self.img_subdir, f'{img_id}.jpg')))
            for img_id in self._image_ids(ann_dir)
        ]
        total = sum(self.dropped_boxes.values())
        if total:
            print_log(
                f'{type(self).__name__}: dropped {total} zero-area or '
                f'inverted box(es) in {len(self.dropped_boxes)} file(s) of '
                f'{self.ann_file or ann_dir}', logger='current', level=30)
        return data_list

    def _image_ids(self, ann_dir: str) -> List[str]:
        if self.ann_file:
            # utf-8-sig: a BOM (Windows editors) is not part of the first id
            ids = list_from_file(self.ann_file, encoding='utf-8-sig',
                                 backend_args=self.backend_args)
            ids = [i.strip() for i in ids if i.strip()]
            where = self.ann_file
        elif not osp.isdir(ann_dir):
            raise FileNotFoundError(
                f'annotation folder {ann_dir} does not exist (ann_file is '
                "'', so the XML files in ann_subdir are read)")
        else:
            self._xml_names = {osp.splitext(n)[0]: n
                                for n in os.listdir(ann_dir)
                                if n.lower().endswith('.xml')}
            ids = sorted(self._xml_names)
            where = ann_dir
        if not ids:
            raise AnnotationError(where, 'lists no images (no XML files)')
        return ids

    def parse_data_info(self, img_info: dict) -> dict:
        """Parse one XML file, naming it in any error.

        Args:
            img_info (dict): Raw image info with ``img_id``, ``file_name``
                and ``xml_path``.

        Returns:
            dict: Parsed annotation with degenerate boxes removed.
        """
        xml_path = img_info['xml_path']
        try:
            data_info = self._parse_xml(img_info)
        except UnknownClassError as err:
            raise ValueError(
                f'{xml_path}: class {err.args[0]!r} is not in the dataset '
                f'classes {self._metainfo["classes"]}. Class names are '
                'case-sensitive; fix the file or set metainfo=dict('
                'classes=...) in the dataset config.') from None
        kept, dropped = drop_degenerate(data_info['instances'], xml_path,
                                        self._metainfo['classes'])
        if dropped:
            self.dropped_boxes[xml_path] = dropped
        data_info['instances'] = kept
        return data_info

    def _parse_instance_info(self,
                             raw_ann_info: ET.ElementTree,
                             minus_one: bool = True) -> List[dict]:
        """Refuse unknown class names, then parse as mmdet does.

        Args:
            raw_ann_info (ElementTree): The parsed XML file.
            minus_one (bool): Whether to subtract 1 from the coordinates.
                Defaults to True.

        Returns:
            list[dict]: Instances with ``bbox``, ``bbox_label`` and
            ``ignore_flag``.
        """
        for obj in raw_ann_info.findall('object'):
            name = obj.find('name').text
            if name not in self._metainfo['classes']:
                raise UnknownClassError(name)
        return super()._parse_instance_info(raw_ann_info, minus_one)

    def _parse_xml(self, img_info: dict) -> dict:
        xml_path = img_info['xml_path']
        try:
            with get_local_path(xml_path,
                                backend_args=self.backend_args) as local:
                tree = ET.parse(local)
        except FileNotFoundError:
            raise AnnotationError(self.ann_file or xml_path, 'lists image '
                                  f'{img_info["img_id"]!r}, but {xml_path} '
                                  'does not exist') from None
        except ET.ParseError as err:
            raise AnnotationError(xml_path, f'is not valid XML: {err}') \
                from None
        root = tree.getroot()
        _check_objects(root, xml_path)
        img_path = self._image_path(img_info['img_id'],
                                    root.findtext('filename'))
        try:
            width = int(float(root.findtext('size/width')))
            height = int(float(root.findtext('size/height')))
        except (TypeError, ValueError):
            width = height = 0
        if width <= 0 or height <= 0:
            width, height = read_image_size(img_path, xml_path, '<size>')
        elif osp.isfile(img_path):  # a missing one: the loader names it
            _check_size(xml_path, img_path, width, height)
        return dict(img_path=img_path, img_id=img_info['img_id'],
                    xml_path=xml_path, width=width, height=height,
                    instances=self._parse_instance_info(tree))

    def _image_path(self, img_id: str,
                    filename: Optional[str] = None) -> str:
        """``<filename>`` if it exists, else ``<id>.jpg``, else the image
        named ``<id>.<ext>`` in the image folder (``<id>.jpg`` if none)."""
        img_dir = osp.join(self.sub_data_root, self.img_subdir)
        if filename and filename.strip():
            name = osp.basename(filename.strip().replace('\\', '/'))
            if osp.isfile(osp.join(img_dir, name)):
                return osp.join(img_dir, name)
        default = osp.join(img_dir, f'{img_id}.jpg')
        if osp.isfile(default):
            return default
        folder = osp.join(img_dir, osp.dirname(img_id))
        if folder not in self._stems:
            names = os.listdir(folder) if osp.isdir(folder) else []
            self._stems[folder] = {
                osp.splitext(n)[0]: n for n in sorted(names, reverse=True)
                if n.lower().endswith(IMG_EXTENSIONS)}
        found = self._stems[folder].get(osp.basename(img_id))
        if found is None:
            return default  # missing: the checks and the loader name it
        return osp.join(folder, found)


def _check_size(xml_path: str, img_path: str, width: int,
                height: int) -> None:
    """Refuse a ``<size>`` that is not the image's (read from its header,
    without decoding); an unreadable image is left to the loader and the
    dataset check, as when the size is trusted."""
    try:
        real = read_image_size(img_path, xml_path, '<size>')
    except BadImageError:
        return
    if (width, height) != real:
        raise AnnotationError(
            xml_path, f'says the image is {width}x{height} (<width> x '
            f'<height>), but {img_path} is {real[0]}x{real[1]}: the image '
            'was resized or replaced after labelling, so the boxes would '
            'not fit it. Label the image again, or scale the boxes and the '
            '<size> in the XML to the image.', '<size>')


def _check_objects(root: ET.Element, xml_path: str) -> None:
    """Name the file and object of a missing name, a bad box number or a
    bad ``<difficult>``; strip the names and write ``<difficult>`` as mmdet
    reads it (``int(text)``), so that ``' cat'`` is class ``cat`` and an
    empty ``<difficult/>`` is 0."""
    for i, obj in enumerate(root.findall('object')):
        where = f'<object> {i + 1}'
        name = obj.find('name')
        if name is None or not (name.text or '').strip():
            raise AnnotationError(xml_path, 'an object has no <name>', where)
        name.text = name.text.strip()
        for key in ('xmin', 'ymin', 'xmax', 'ymax'):
            text = obj.findtext(f'bndbox/{key}')
            try:
                if not math.isfinite(float(text)):
                    raise ValueError(text)
            except (TypeError, ValueError):
                raise AnnotationError(
                    xml_path, f'<bndbox><{key}> must be a finite number, '
                    f'got {text!r}', where) from None
        difficult = obj.find('difficult')
        if difficult is not None:
            text = (difficult.text or '0').strip() or '0'
            try:
                value = float(text)
            except ValueError:
                value = None
            if value not in (0.0, 1.0):
                raise AnnotationError(
                    xml_path, f'<difficult> must be 0 or 1, got {text!r}',
                    where)
            difficult.text = str(int(value))
