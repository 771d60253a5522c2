"""``Predictor`` running exported ONNX graphs in ONNX Runtime / OpenVINO.

The same interface and outputs as :class:`Predictor` (``predict`` returns
``pred_instances`` per image), so results JSON, drawings and video output
are unchanged. mmdet's preprocessing and post-processing run in Python;
the graphs run the layers (see :mod:`rcnn_plugin.deployment`).
"""
from typing import Dict, Optional

from mmengine.logging import print_log

from .predictor import Predictor

__all__ = ['OnnxPredictor', 'make_predictor']


class OnnxPredictor(Predictor):
    """A detector from a config and its exported ONNX graphs.

    Args:
        config (str): Config file the ONNX file was exported from.
        onnx (str): Graph ``features`` file (``--out`` of the export);
            ``.bbox.onnx`` / ``.mask.onnx`` siblings are found by name.
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
            Defaults to 'onnxruntime'.
        num_threads (int, optional): Threads per graph; None uses torch's.
            Defaults to None.
        record (dict, optional): Collects graph inputs (calibration).
            Defaults to None.
    """

    def __init__(self, config: str, onnx: str,
                 backend: str = 'onnxruntime',
                 num_threads: Optional[int] = None,
                 record: Optional[Dict[str, list]] = None) -> None:
        from rcnn_plugin.deployment import attach_graphs, check_meta
        self.onnx = onnx
        super().__init__(config, None, 'cpu')
        check_meta(onnx, self.inferencer.cfg, self.classes)
        self.backend = backend
        self.meta = attach_graphs(self.model, onnx, backend, num_threads,
                                  record)

    def _config_meta(self) -> dict:
        """Class names that only the dataset's files give (YOLO, CSV) are
        taken from the export's metadata, so a machine that serves the
        model needs no training data; the class count is still checked
        against the config."""
        import json

        from rcnn_plugin.deployment.runtime import read_meta
        meta = self._lazy_config_meta()
        recorded = read_meta(self.onnx).get('classes')
        if meta.get('classes') or recorded is None:
            return super()._config_meta()
        meta['classes'] = tuple(json.loads(recorded))
        print_log(f'class names from {self.onnx} (the config\'s test '
                  'dataset names them only in its files)', 'current')
        return meta


def make_predictor(config: str, checkpoint: Optional[str] = None,
                   backend: str = 'pytorch', onnx: Optional[str] = None,
                   device: str = 'cpu') -> Predictor:
    """A :class:`Predictor` for ``backend``.

    Args:
        config (str): Config file.
        checkpoint (str, optional): Checkpoint (PyTorch backend).
            Defaults to None.
        backend (str): ``'pytorch'``, ``'onnxruntime'`` or ``'openvino'``.
            Defaults to 'pytorch'.
        onnx (str, optional): Exported ONNX file (other backends).
            Defaults to None.
        device (str): Device of the PyTorch backend. Defaults to 'cpu'.

    Returns:
        Predictor: The predictor.
    """
    if backend == 'pytorch':
        return Predictor(config, checkpoint, device)
    if onnx is None:
        raise ValueError(f'--backend {backend} needs --onnx FILE (made by '
                         'tools/deployment/export_onnx.py)')
    return OnnxPredictor(config, onnx, backend)
