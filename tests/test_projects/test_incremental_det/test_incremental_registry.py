"""The project's classes resolve in mmdet's registries; its Args match."""
import inspect

import pytest
from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from test_style import _documented_args

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
    assert registry.get(name) is cls
    assert registry.scope == 'mmdet'


def test_every_public_class_is_listed():
    listed = {cls for _, _, cls in EXPECTED}
    for name in incremental_det.__all__:
        obj = getattr(incremental_det, name)
        if inspect.isclass(obj):
            assert obj in listed, f'{name} is not in EXPECTED'


def test_documented_args_match_signatures():
    problems = []
    for name in incremental_det.__all__:
        obj = getattr(incremental_det, name)
        funcs = [(name, obj, obj.__init__ if inspect.isclass(obj) else obj)]
        if inspect.isclass(obj):
            funcs += [(f'{name}.{m}', f, f) for m, f in vars(obj).items()
                      if inspect.isfunction(f) and not m.startswith('_')]
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
