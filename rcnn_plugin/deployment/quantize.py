"""int8 static post-training quantisation of exported graphs (QDQ).

Calibration runs the fp32 graphs inside mmdet's pipeline on sample images
(:func:`rcnn_plugin.apis.calibration_feeds`) and collects the
inputs each graph saw; ONNX Runtime's ``quantize_static`` then calibrates
activation ranges (MinMax) on them. Weights are int8 (per channel),
activations uint8, in QDQ format, which ONNX Runtime and OpenVINO both run.
Proposal NMS and post-processing stay in float32 Python as before.
"""
import os
import os.path as osp
import shutil
from typing import Dict, Optional, Sequence

from .export import graph_paths
from .runtime import read_meta

__all__ = ['quantize_graphs']


class _Reader:
    """``CalibrationDataReader`` over recorded graph inputs."""

    def __init__(self, path: str, feeds: list) -> None:
        import onnx
        names = [i.name for i in onnx.load(path).graph.input]
        self.items = iter([dict(zip(names, f)) for f in feeds])

    def get_next(self) -> Optional[dict]:
        return next(self.items, None)


def _copy_meta(src: str, dst: str) -> None:
    import onnx
    model = onnx.load(dst)
    del model.metadata_props[:]
    for key, value in sorted(read_meta(src).items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = f'rcnn_plugin.{key}', value
    onnx.save(model, dst)


def quantize_graphs(onnx: str, out: str, feeds: Dict[str, list],
                    graphs: Sequence[str] = ('features', 'bbox'),
                    per_channel: bool = True) -> Dict[str, str]:
    """Write an int8 copy of an export; graphs not listed stay fp32.

    Args:
        onnx (str): Graph ``features`` file of the fp32 export.
        out (str): Graph ``features`` file of the int8 export.
        feeds (dict): Calibration inputs
            (:func:`rcnn_plugin.apis.calibration_feeds`).
        graphs (Sequence[str]): Graphs to quantise. Defaults to
            ``('features', 'bbox')``.
        per_channel (bool): Per-channel weight scales. Defaults to True.

    Returns:
        dict: Graph name to written file.
    """
    try:
        from onnxruntime.quantization import (
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:
        raise ImportError('int8 quantisation needs onnxruntime: pip install '
                          '-e ".[deploy]"') from err
    if osp.realpath(out) == osp.realpath(onnx):
        raise ValueError(f'{out}: the int8 export would overwrite the '
                         'fp32 one it reads; give another file')
    with_mask = 'mask' in graph_paths(onnx, True) and \
        read_meta(onnx).get('with_mask') == 'true'
    src, dst = graph_paths(onnx, with_mask), graph_paths(out, with_mask)
    unknown = set(graphs) - set(src)
    if unknown:
        raise ValueError(f'--graphs {sorted(unknown)}: the export has '
                         f'{sorted(src)}')
    for name, path in src.items():
        if name not in graphs:
            shutil.copyfile(path, dst[name])
            continue
        if not feeds.get(name):
            raise ValueError(f'no calibration inputs for graph {name}: '
                             'give images with detections')
        prepared = f'{dst[name]}.prep.onnx'
        quant_pre_process(path, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared, dst[name], _Reader(path, feeds[name]),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.remove(prepared)
        _copy_meta(path, dst[name])
    return dst
