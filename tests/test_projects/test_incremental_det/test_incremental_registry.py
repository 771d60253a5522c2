"""The project's classes resolve in mmdet's registries; its Args match."""
import pytest
from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from project_registry import args_problems, check_all_listed, check_resolves

from projects.IncrementalDet import incremental_det

EXPECTED = [
    (MODELS, 'IncrementalFasterRCNN', incremental_det.IncrementalFasterRCNN),
    (MODELS, 'IncrementalMaskRCNN', incremental_det.IncrementalMaskRCNN),
    (MODELS, 'UnbiasedCrossEntropyLoss',
     incremental_det.UnbiasedCrossEntropyLoss),
    (DATASETS, 'NewClassDataset', incremental_det.NewClassDataset),
    (METRICS, 'IncrementalVOCMetric', incremental_det.IncrementalVOCMetric),
    (TRANSFORMS, 'BoxReplay', incremental_det.BoxReplay),
    (HOOKS, 'ReplayMemoryHook', incremental_det.ReplayMemoryHook),
]


@pytest.mark.parametrize('registry,name,cls', EXPECTED,
                         ids=[e[1] for e in EXPECTED])
def test_resolves_in_mmdet_registry(registry, name, cls):
    check_resolves(registry, name, cls)


def test_every_public_class_is_listed():
    check_all_listed(incremental_det, EXPECTED)


def test_documented_args_match_signatures():
    problems = args_problems(incremental_det)
    assert not problems, '\n'.join(problems)
