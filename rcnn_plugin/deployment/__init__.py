"""ONNX export of two-stage detectors and the ONNX Runtime / OpenVINO
backends (docs/deployment.md)."""
from .check import (
                     capture_input,
                     dataset_image_paths,
                     predict_dicts,
                     self_check,
)
from .export import config_meta, export_onnx, graph_paths
from .graphs import (
                     BBoxGraph,
                     ExportRoIExtractor,
                     FeatureGraph,
                     MaskGraph,
                     check_exportable,
)
from .runtime import (
                     BACKENDS,
                     GraphRunner,
                     attach_graphs,
                     check_meta,
                     read_meta,
)
from .verify import compare_detections, match_fraction

__all__ = [
    'BACKENDS', 'BBoxGraph', 'ExportRoIExtractor', 'FeatureGraph',
    'GraphRunner', 'MaskGraph', 'attach_graphs', 'capture_input',
    'check_exportable', 'check_meta', 'compare_detections', 'config_meta',
    'dataset_image_paths', 'export_onnx', 'graph_paths', 'match_fraction',
    'predict_dicts', 'read_meta', 'self_check'
]
