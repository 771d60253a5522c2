"""Shared fixtures: a tiny Faster R-CNN config and its ONNX export."""
import os.path as osp

import pytest
from deploy_utils import export, root_conftest

_root = root_conftest()
REPO, TINY_CONFIG = _root.REPO, _root.TINY_CONFIG

pytest.importorskip('onnxruntime')


@pytest.fixture(scope='session')
def deploy_config(tmp_path_factory, synthetic_cells) -> str:
    """The shrunk demo config on the tiny synthetic dataset."""
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    path = tmp_path_factory.mktemp('deploy') / 'tiny_faster-rcnn.py'
    path.write_text(TINY_CONFIG.format(base=base, data_root=synthetic_cells))
    return str(path)


@pytest.fixture(scope='session')
def cell_images(synthetic_cells) -> list:
    """Two synthetic validation images (BGR, 96x96)."""
    from rcnn_plugin.apis import collect_images, read_image
    paths = collect_images(osp.join(synthetic_cells, 'val'))[:2]
    return [read_image(p) for p in paths]


@pytest.fixture(scope='session')
def torch_predictor(deploy_config):
    """The PyTorch predictor (random weights, fixed seed)."""
    import torch

    from rcnn_plugin.apis import Predictor
    torch.manual_seed(0)
    return Predictor(deploy_config, None, 'cpu')


@pytest.fixture(scope='session')
def static_onnx(tmp_path_factory, torch_predictor, cell_images) -> str:
    """A static-shape export of the tiny model (graph ``features`` file)."""
    path = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    export(torch_predictor, cell_images[0], path, dynamic=False)
    return path


@pytest.fixture(scope='session')
def ort_predictor(deploy_config, static_onnx):
    """ONNX Runtime predictor of the static export (shared: building the
    mmdet side costs seconds)."""
    from rcnn_plugin.apis import OnnxPredictor
    return OnnxPredictor(deploy_config, static_onnx)
