"""Every public registered class resolves by name in mmdet's registries."""
import inspect

import pytest
from mmdet.registry import DATASETS, MODEL_WRAPPERS, TRANSFORMS

import rcnn_plugin
from rcnn_plugin import datasets, engine

EXPECTED = [
    (DATASETS, 'BCCDDataset', datasets.BCCDDataset),
    (DATASETS, 'StrictXMLDataset', datasets.StrictXMLDataset),
    (DATASETS, 'SyntheticCellsDataset', datasets.SyntheticCellsDataset),
    (DATASETS, 'YOLODataset', datasets.YOLODataset),
    (DATASETS, 'VIADataset', datasets.VIADataset),
    (DATASETS, 'LabelMeDataset', datasets.LabelMeDataset),
    (DATASETS, 'KittiDataset', datasets.KittiDataset),
    (TRANSFORMS, 'LoadDomainImageFromFile',
     datasets.transforms.LoadDomainImageFromFile),
    (DATASETS, 'BalloonDataset', datasets.BalloonDataset),
    (MODEL_WRAPPERS, 'DeviceAwareDistributedDataParallel',
     engine.DeviceAwareDistributedDataParallel),
]


@pytest.mark.parametrize('registry,name,cls', EXPECTED,
                         ids=[e[1] for e in EXPECTED])
def test_resolves_in_mmdet_registry(registry, name, cls):
    assert registry.get(name) is cls
    assert registry.scope == 'mmdet'


def test_every_public_class_is_listed():
    """A new registered class must be added to EXPECTED above."""
    listed = {cls for _, _, cls in EXPECTED}
    for module in (datasets, engine):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__.startswith(
                    'rcnn_plugin') and not issubclass(obj, Exception):
                assert obj in listed, f'{name} is not in EXPECTED'


def test_version():
    assert rcnn_plugin.__version__ == '0.1.0'
