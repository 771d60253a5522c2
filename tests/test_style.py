"""Repository-wide style checks: lint, documented Args, __all__."""
import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys

import pytest

import rcnn_plugin

from conftest import REPO


def _modules():
    for info in pkgutil.walk_packages(rcnn_plugin.__path__, 'rcnn_plugin.'):
        yield importlib.import_module(info.name)


def _documented_args(doc):
    match = re.search(r'\n\s*Args:\n(.*?)(\n\s*\n|\Z)', doc, re.S)
    if not match:
        return None
    block = match.group(1)
    indent = min(len(line) - len(line.lstrip())
                 for line in block.splitlines() if line.strip())
    names = []
    for line in block.splitlines():
        if len(line) - len(line.lstrip()) == indent:
            name = re.match(r'\s*\**(\w+)', line).group(1)
            names.append(name)
    return names


def _public_callables():
    for module in _modules():
        for name, obj in vars(module).items():
            if name.startswith('_') or getattr(obj, '__module__',
                                               None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f'{module.__name__}.{name}', obj, obj
            elif inspect.isclass(obj):
                yield f'{module.__name__}.{name}', obj, obj.__init__
                for mname, meth in vars(obj).items():
                    if inspect.isfunction(meth) and not mname.startswith('_'):
                        yield f'{module.__name__}.{name}.{mname}', meth, meth


def test_documented_args_match_signatures():
    problems = []
    for qualname, obj, func in _public_callables():
        doc = inspect.getdoc(obj) or ''
        documented = _documented_args('\n' + doc)
        if documented is None:
            continue
        params = [p for p in inspect.signature(func).parameters
                  if p not in ('self', 'cls')]
        if documented != params:
            problems.append(f'{qualname}: Args {documented} != {params}')
    assert not problems, '\n'.join(problems)


def test_every_package_has_explicit_all():
    for module in _modules():
        if module.__file__.endswith('__init__.py'):
            assert hasattr(module, '__all__'), module.__name__


def test_ruff_lint():
    ruff = shutil.which('ruff') or shutil.which(
        'ruff', path=str(__import__('pathlib').Path(sys.executable).parent))
    if ruff is None:
        pytest.fail('ruff is not installed: pip install -e ".[tests]"')
    proc = subprocess.run(
        [ruff, 'check', 'rcnn_plugin', 'tools', 'tests', 'configs',
         'projects'],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_files_stay_small():
    import glob
    for path in glob.glob(f'{REPO}/rcnn_plugin/**/*.py', recursive=True) + \
            glob.glob(f'{REPO}/tools/**/*.py', recursive=True) + \
            glob.glob(f'{REPO}/projects/**/*.py', recursive=True):
        assert sum(1 for _ in open(path)) <= 400, path
