"""Every public registered class resolves by name in mmdet's registries."""
import inspect

import pytest
from mmdet.registry import DATASETS, MODEL_WRAPPERS, MODELS, OPTIM_WRAPPERS

import rcnn_plugin
from rcnn_plugin import datasets, engine, models

EXPECTED = [
    (DATASETS, 'BCCDDataset', datasets.BCCDDataset),
    (DATASETS, 'StrictXMLDataset', datasets.StrictXMLDataset),
    (DATASETS, 'SyntheticCellsDataset', datasets.SyntheticCellsDataset),
    (MODEL_WRAPPERS, 'DeviceAwareDistributedDataParallel',
     engine.DeviceAwareDistributedDataParallel),
    (MODELS, 'TorchvisionRoIExtractor', models.TorchvisionRoIExtractor),
    (MODELS, 'ChannelsLastDetDataPreprocessor',
     models.ChannelsLastDetDataPreprocessor),
    (MODELS, 'FP32PostRPNHead', models.FP32PostRPNHead),
    (MODELS, 'FP32PostShared2FCBBoxHead', models.FP32PostShared2FCBBoxHead),
    (OPTIM_WRAPPERS, 'BF16AmpOptimWrapper', engine.BF16AmpOptimWrapper),
]


@pytest.mark.parametrize('registry,name,cls', EXPECTED,
                         ids=[e[1] for e in EXPECTED])
def test_resolves_in_mmdet_registry(registry, name, cls):
    assert registry.get(name) is cls
    assert registry.scope == 'mmdet'


def test_every_public_class_is_listed():
    """A new registered class must be added to EXPECTED above."""
    listed = {cls for _, _, cls in EXPECTED}
    for module in (datasets, engine, models):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__.startswith(
                    'rcnn_plugin') and not issubclass(obj, Exception):
                assert obj in listed, f'{name} is not in EXPECTED'


def test_version():
    assert rcnn_plugin.__version__ == '0.1.0'
