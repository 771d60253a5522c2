"""BCCD: blood cell detection in Pascal VOC format (RBC, WBC, Platelets).

Layout (the public BCCD_Dataset repository)::

    bccd/
      Annotations/BloodImage_00000.xml
      JPEGImages/BloodImage_00000.jpg
      ImageSets/Main/{train,val,test,trainval}.txt

Use ``data_root='.../bccd/'``, ``data_prefix=dict(sub_data_root='')`` and
``ann_file='ImageSets/Main/train.txt'``.
"""
from mmdet.registry import DATASETS

from .proposals import StrictProposalsMixin
from .xml_style import StrictXMLDataset


@DATASETS.register_module()
class BCCDDataset(StrictProposalsMixin, StrictXMLDataset):
    """BCCD blood cell dataset (640x480 smear images, 3 classes)."""

    METAINFO = {
        'classes': ('RBC', 'WBC', 'Platelets'),
        'palette': [(220, 20, 60), (0, 82, 204), (255, 179, 0)]
    }
