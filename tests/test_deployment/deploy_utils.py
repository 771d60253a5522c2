"""Helpers of the deployment tests."""
import numpy as np


def export(predictor, image: np.ndarray, path: str, dynamic: bool) -> dict:
    """Export ``predictor``'s model with ``image`` as the sample input."""
    from rcnn_plugin.deployment import capture_input, export_onnx
    sample = capture_input(predictor, image)
    return export_onnx(predictor.model, predictor.inferencer.cfg, path,
                       predictor.classes, sample, dynamic=dynamic)
