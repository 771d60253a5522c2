"""Checks every mmdet project's registry test runs: its classes resolve in
mmdet's registries, every public class is listed, and documented Args
follow the signatures (as tests/test_registry.py does for rcnn_plugin)."""
import inspect
from types import ModuleType
from typing import List, Sequence, Tuple

from test_style import _documented_args


def check_resolves(registry, name: str, cls: type) -> None:
    assert registry.get(name) is cls
    assert registry.scope == 'mmdet'


def check_all_listed(package: ModuleType, expected: Sequence[Tuple]) -> None:
    listed = {cls for _, _, cls in expected}
    for name in package.__all__:
        obj = getattr(package, name)
        if inspect.isclass(obj):
            assert obj in listed, f'{name} is not in EXPECTED'


def args_problems(package: ModuleType) -> List[str]:
    """``name: documented != params`` for each public callable (and public
    method) whose docstring's Args differ from its signature."""
    problems = []
    for name in package.__all__:
        obj = getattr(package, name)
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
    return problems
