"""ONNX export of two-stage detectors and the ONNX Runtime / OpenVINO
backends (docs/deployment.md)."""
from .accuracy import BackendAccuracy, coco_sample, voc_sample
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
                     require_backend,
)
from .verify import compare_detections, match_fraction

__all__ = [
    'BACKENDS', 'BBoxGraph', 'BackendAccuracy', 'ExportRoIExtractor',
    'FeatureGraph', 'GraphRunner', 'MaskGraph', 'attach_graphs',
    'check_exportable', 'check_meta', 'coco_sample', 'compare_detections',
    'config_meta', 'export_onnx', 'graph_paths', 'match_fraction',
    'read_meta', 'require_backend', 'voc_sample'
]
