"""The project's classes resolve in mmdet's registries; its Args match."""
import inspect

import pytest
from mmdet.registry import DATASETS, MODELS
from test_style import _documented_args

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
    assert registry.get(name) is cls
    assert registry.scope == 'mmdet'


def test_every_public_class_is_listed():
    listed = {cls for _, _, cls in EXPECTED}
    for name in da.__all__:
        obj = getattr(da, name)
        if inspect.isclass(obj):
            assert obj in listed, f'{name} is not in EXPECTED'


def test_documented_args_match_signatures():
    problems = []
    for name in da.__all__:
        obj = getattr(da, name)
        funcs = [(name, obj, obj.__init__ if inspect.isclass(obj) else obj)]
        for qualname, doc_obj, func in funcs:
            documented = _documented_args('\n' + (inspect.getdoc(doc_obj)
                                                  or ''))
            if documented is None:
                continue
            params = [p for p in inspect.signature(func).parameters
                      if p not in ('self', 'cls')]
            if documented != params:
                problems.append(f'{qualname}: {documented} != {params}')
    assert not problems, '\n'.join(problems)
