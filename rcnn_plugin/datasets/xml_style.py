"""Pascal VOC XML datasets that refuse to lose data silently.

mmdet's ``XMLDataset`` skips objects whose class is not in METAINFO (a typo
gives an empty dataset without a word) and keeps degenerate boxes, which
turn ``loss_bbox`` into NaN. :class:`StrictXMLDataset` raises on unknown
class names, naming the XML file, and drops zero-area or inverted boxes with
a warning per box and a count per dataset.
"""
import xml.etree.ElementTree as ET
from typing import Dict, List

from mmdet.datasets import XMLDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .native import drop_degenerate


class UnknownClassError(KeyError):
    """An annotation names a class that is not in the dataset's METAINFO."""


@DATASETS.register_module()
class StrictXMLDataset(XMLDataset):
    """XML (Pascal VOC) dataset with loud validation.

    It takes the same arguments as mmdet's ``XMLDataset``. After
    ``full_init``, ``dropped_boxes`` maps ``'<xml file>'`` to the number of
    degenerate boxes removed from it.
    """

    def load_data_list(self) -> List[dict]:
        """Load annotations and report degenerate boxes once per dataset.

        Returns:
            list[dict]: Annotation info of each image.
        """
        self.dropped_boxes: Dict[str, int] = {}
        data_list = super().load_data_list()
        total = sum(self.dropped_boxes.values())
        if total:
            print_log(
                f'{type(self).__name__}: dropped {total} zero-area or '
                f'inverted box(es) in {len(self.dropped_boxes)} file(s) of '
                f'{self.ann_file}', logger='current', level=30)
        return data_list

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
            data_info = super().parse_data_info(img_info)
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
