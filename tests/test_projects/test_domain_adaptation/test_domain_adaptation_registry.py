"""The project's classes resolve in mmdet's registries; its Args match."""
import pytest
from mmdet.registry import DATASETS, MODELS
from project_registry import args_problems, check_all_listed, check_resolves

from projects.DomainAdaptation import domain_adaptation as da

EXPECTED = [
    (MODELS, 'DAFasterRCNN', da.DAFasterRCNN),
    (MODELS, 'DomainAdaptiveTeacher', da.DomainAdaptiveTeacher),
    (MODELS, 'GradientReversal', da.GradientReversal),
    (MODELS, 'ImageDomainClassifier', da.ImageDomainClassifier),
    (MODELS, 'InstanceDomainClassifier', da.InstanceDomainClassifier),
    (DATASETS, 'UnlabelledDataset', da.UnlabelledDataset),
]


@pytest.mark.parametrize('registry,name,cls', EXPECTED,
                         ids=[e[1] for e in EXPECTED])
def test_resolves_in_mmdet_registry(registry, name, cls):
    check_resolves(registry, name, cls)


def test_every_public_class_is_listed():
    check_all_listed(da, EXPECTED)


def test_documented_args_match_signatures():
    problems = args_problems(da)
    assert not problems, '\n'.join(problems)
