"""Helpers of the deployment tests."""
import numpy as np


def export(predictor, image: np.ndarray, path: str, dynamic: bool) -> dict:
    """Export ``predictor``'s model with ``image`` as the sample input."""
    from rcnn_plugin.apis import capture_input
    from rcnn_plugin.deployment import export_onnx
    sample = capture_input(predictor, image)
    return export_onnx(predictor.model, predictor.inferencer.cfg, path,
                       predictor.classes, sample, dynamic=dynamic)


def root_conftest():
    """``tests/conftest.py`` as a module (its name is taken here)."""
    import importlib.util
    import os.path as osp
    tests = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        '_tests_conftest', osp.join(tests, 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
