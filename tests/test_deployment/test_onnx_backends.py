"""tools/infer.py gives the same results JSON with every backend."""
import importlib.util
import json
import os.path as osp
import shutil

import pytest

from rcnn_plugin.apis import OnnxPredictor, make_predictor

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _infer_tool():
    spec = importlib.util.spec_from_file_location(
        '_infer_tool', osp.join(REPO, 'tools', 'infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(ref: list, other: list) -> bool:
    """Every reference entry has a twin (image, class, box, score)."""
    if len(ref) != len(other):
        return False
    for r in ref:
        if not any(o['image_id'] == r['image_id']
                   and o['category_id'] == r['category_id']
                   and max(abs(a - b) for a, b in zip(o['bbox'], r['bbox']))
                   < 0.1 and abs(o['score'] - r['score']) < 1e-3
                   for o in other):
            return False
    return True


def test_backends_same_results_json(tmp_path, deploy_config, synthetic_cells,
                                    torch_predictor, ort_predictor,
                                    static_onnx):
    tool = _infer_tool()
    src = tmp_path / 'images'
    src.mkdir()
    for name in sorted(__import__('os').listdir(
            osp.join(synthetic_cells, 'val')))[:2]:
        shutil.copy(osp.join(synthetic_cells, 'val', name), src / name)
    predictors = dict(pytorch=torch_predictor,
                      onnxruntime=ort_predictor)
    if importlib.util.find_spec('openvino') is not None:
        predictors['openvino'] = OnnxPredictor(deploy_config, static_onnx,
                                               'openvino')
    results = {}
    for backend, predictor in predictors.items():
        out = tmp_path / backend
        args = tool.parse_args([
            deploy_config, 'none', str(src), '--out-dir', str(out),
            '--score-thr', '0.05', '--no-progress', '--backend', backend,
            '--onnx', static_onnx])
        summary = tool.infer(args, predictor)
        assert summary['processed'] == 2
        assert len(list((out / 'vis').iterdir())) == 2
        results[backend] = json.loads((out / 'results.json').read_text())
    assert results['pytorch']
    for backend, res in results.items():
        assert _same(results['pytorch'], res), backend


def test_backend_needs_onnx_file(deploy_config):
    with pytest.raises(ValueError, match='--onnx'):
        make_predictor(deploy_config, backend='onnxruntime')


def test_missing_backend_names_extra(monkeypatch):
    import sys

    from rcnn_plugin.deployment import GraphRunner
    monkeypatch.setitem(sys.modules, 'openvino', None)
    with pytest.raises(ImportError, match=r'\.\[deploy\]'):
        GraphRunner('x.onnx', 'openvino')
