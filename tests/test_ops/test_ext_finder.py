"""The ``mmcv._ext`` finder: when it serves, the .pth, the unserved names."""
import ast
import glob
import importlib
import importlib.machinery
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch

from rcnn_plugin.ops import ext_finder as finder

from conftest import REPO

FINDER_PATH = osp.join(REPO, 'rcnn_plugin', 'ops', 'ext_finder.py')
ops = importlib.import_module('mmcv.ops')
ext = importlib.import_module('mmcv._ext')
needs_served = pytest.mark.skipif(
    not finder.is_served(), reason='a compiled mmcv._ext is installed')


def _run(code, cwd, timeout=120):
    proc = subprocess.run([sys.executable, '-c', code], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()


def _wrapper_names():
    """Every name mmcv's wrappers pass to ``load_ext('_ext', [...])``."""
    import mmcv
    names = set()
    for path in glob.glob(osp.join(osp.dirname(mmcv.__file__), '**', '*.py'),
                          recursive=True):
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call)
                    and getattr(node.func, 'attr', None) == 'load_ext'
                    and len(node.args) == 2):
                names |= set(ast.literal_eval(node.args[1]))
    return names


def test_finder_is_appended_once_after_the_path_finder():
    assert not finder.install()
    ours = [i for i, f in enumerate(sys.meta_path)
            if getattr(f, 'rcnn_plugin_mmcv_ext', False)]
    assert len(ours) == 1
    path_finder = sys.meta_path.index(importlib.machinery.PathFinder)
    assert ours[0] > path_finder


def test_served_exactly_when_no_compiled_ext():
    assert finder.is_served() != finder.compiled_ext_available()
    if finder.is_served():
        assert ext.__file__.startswith(finder.SERVED_DIR)
        assert 'torchvision' in ops.get_compiler_version()
        cuda = ops.get_compiling_cuda_version()
        assert cuda == 'not available' or cuda[0].isdigit()


def test_every_name_mmcv_loads_exists():
    served = finder.load_served()
    names = _wrapper_names()
    assert len(names) > 100
    assert names == set(served.__all__) | served.UNSERVED
    assert all(hasattr(served, name) for name in names)
    assert not hasattr(served, 'not_an_mmcv_op')
    if finder.is_served():
        assert all(hasattr(ext, name) for name in names)


@needs_served
def test_unserved_op_raises_our_message():
    with pytest.raises(NotImplementedError) as err:
        ext.nms_rotated(torch.zeros(1, 5))
    msg = str(err.value)
    assert 'nms_rotated' in msg and 'not served by rcnn_plugin' in msg
    assert 'RCNN_MMCV=full bash tools/setup_env.sh' in msg
    assert 'rcnn_plugin[full]' in msg
    boxes = torch.tensor([[5.0, 5.0, 4.0, 2.0, 0.1]])
    with pytest.raises(NotImplementedError, match='box_iou_rotated'):
        ops.box_iou_rotated(boxes, boxes)
    with pytest.raises(NotImplementedError, match='nms_rotated'):
        ops.nms_rotated(boxes, torch.ones(1), 0.5)


def test_a_compiled_ext_wins(tmp_path):
    # A module _ext.py in a folder on mmcv.__path__ stands for the compiled
    # mmcv/_ext*.so: the standard path finder must find it before ours.
    (tmp_path / '_ext.py').write_text('COMPILED = True\n')
    code = '\n'.join([
        finder.pth_line(FINDER_PATH), 'import mmcv',
        f'mmcv.__path__.append({str(tmp_path)!r})',
        'import mmcv._ext as e',
        'f = sys.modules["rcnn_plugin_ext_finder"]',
        'print(getattr(e, "COMPILED", "real"), f.is_served(),',
        '      f.compiled_ext_available())'
    ])
    assert _run(code, tmp_path) == ['True False True'] or (
        finder.compiled_ext_available())


def test_pth_line_is_one_import_line_and_skips_a_missing_file(tmp_path):
    line = finder.pth_line(FINDER_PATH)
    assert line.startswith('import ') and '\n' not in line
    missing = finder.pth_line(str(tmp_path / 'gone.py'))
    # The venv's own .pth may have loaded the finder at start-up: forget it.
    out = _run('import sys\nsys.modules.pop("rcnn_plugin_ext_finder", None)'
               f'\n{missing}\n'
               'print(sys.modules.get("rcnn_plugin_ext_finder"))', tmp_path)
    assert out == ['None']


def test_cli_writes_the_pth(tmp_path):
    proc = subprocess.run(
        [sys.executable, FINDER_PATH, '--write-pth',
         str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pth = tmp_path / finder.PTH_NAME
    assert proc.stdout.strip() == str(pth)
    assert pth.read_text() == finder.pth_line(FINDER_PATH) + '\n'


@pytest.mark.slow
def test_pth_serves_a_bare_interpreter(tmp_path):
    site_dir = tmp_path / 'site'
    site_dir.mkdir()
    finder.write_pth(str(site_dir))
    code = '\n'.join([
        f'import site; site.addsitedir({str(site_dir)!r})',
        'import mmdet.models', 'from mmdet.apis import init_detector',
        'import mmcv._ext as e', 'import mmcv.ops',
        'print(e.__file__)', 'print(mmcv.ops.get_compiler_version())'
    ])
    out = _run(code, tmp_path, timeout=300)
    if finder.is_served():
        assert out[0].startswith(finder.SERVED_DIR)
        assert 'torchvision' in out[1]


def test_use_ext_swaps_and_restores_the_wrappers_kernels():
    # mmcv.ops re-exports functions named like its modules: use sys.modules.
    nms_mod = sys.modules['mmcv.ops.nms']
    roi_mod = sys.modules['mmcv.ops.roi_align']
    before = nms_mod.ext_module
    stand_in = object()
    with finder.use_ext(stand_in):
        assert nms_mod.ext_module is stand_in
        assert roi_mod.ext_module is stand_in
    assert nms_mod.ext_module is before


def test_benchmark_ops_max_diff():
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
    from benchmark_ops import max_diff
    a = dict(x=torch.tensor([1.0, 2.0]), e=torch.zeros(0))
    same = max_diff(a, dict(x=torch.tensor([1.0, 2.0]), e=torch.zeros(0)))
    assert same['max_abs'] == 0.0 and same['tensors'] == 2
    off = max_diff(a, dict(x=torch.tensor([1.0, 2.5]), e=torch.zeros(0)))
    assert off['max_abs'] == 0.5 and off['at'] == 'x'
    assert max_diff(a, dict(x=a['x'])) == dict(equal_keys=False)
    assert max_diff(a, dict(x=torch.zeros(3), e=a['e']))[
        'shape_mismatch'] == 'x'
    # a NaN on one side only is a mismatch (NaN > x is never true)
    nan = max_diff(a, dict(x=torch.tensor([1.0, float('nan')]), e=a['e']))
    assert nan['nonfinite_mismatch'] == 'x'
    both = dict(x=torch.tensor([1.0, float('nan')]), e=a['e'])
    assert max_diff(both, both)['max_abs'] == 0.0


def test_missing_mmcv_is_a_sentence():
    code = ('import sys\nsys.modules["mmcv"] = None\n'
            'try:\n    import rcnn_plugin\n'
            'except ImportError as e:\n    print(type(e).__name__, e)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=REPO, timeout=120).stdout
    assert out.startswith('ImportError rcnn_plugin needs mmcv'), out
    assert "rcnn_plugin[lite]" in out and "rcnn_plugin[full]" in out
