"""Export a two-stage detector to ONNX graphs with metadata.

``export_onnx(model, cfg, 'model.onnx')`` writes ``model.onnx`` (graph
``features``), ``model.bbox.onnx`` and, for Mask R-CNN, ``model.mask.onnx``
(see :mod:`rcnn_plugin.deployment.graphs`). Each file stores the config's
class names, input scale, pad divisor, mean and std in ``metadata_props``,
so that a file exported for another config is refused at load, and
``needs_proposals``: true for a detector without RPN (Fast R-CNN), whose
``features`` graph gives the neck's features only and whose proposals come
with each image at inference.
"""
import json
import os.path as osp
import uuid
import warnings
from typing import Dict, List, Optional

import torch
from torch import nn

from ..utils.config_types import cfg_type_name, iter_pipeline_steps
from .graphs import BBoxGraph, FeatureGraph, MaskGraph, check_exportable

__all__ = ['config_meta', 'export_onnx', 'graph_paths']


def graph_paths(path: str, with_mask: bool = False) -> Dict[str, str]:
    """Files of an export: ``features`` (``path``), ``bbox``, ``mask``.

    Args:
        path (str): The ``--out`` file, e.g. ``model.onnx``.
        with_mask (bool): Include the mask graph. Defaults to False.

    Returns:
        dict: Graph name to file path.
    """
    stem = path[:-5] if path.endswith('.onnx') else path
    paths = dict(features=path, bbox=f'{stem}.bbox.onnx')
    if with_mask:
        paths['mask'] = f'{stem}.mask.onnx'
    return paths


def _test_scale(cfg) -> Optional[List[int]]:
    """The test ``Resize`` scale, also inside dataset wrappers (mmdet's
    ``get_test_pipeline_cfg`` follows ``dataset`` / ``datasets[0]``, as
    ``Predictor`` does); None when the test pipeline has no ``Resize``."""
    from mmdet.utils import get_test_pipeline_cfg
    for _, step in iter_pipeline_steps(get_test_pipeline_cfg(cfg)):
        if cfg_type_name(step) == 'Resize':  # also in ProposalBroadcaster
            scale = step.get('scale', step.get('scale_factor'))
            return list(scale) if isinstance(scale, (list, tuple)) else scale
    return None


def _geometry(cfg) -> Dict:
    """What the Python side of an exported model (anchors, box decoding,
    the test resize) takes from the loading config."""
    from mmdet.utils import get_test_pipeline_cfg
    model = cfg.model
    bbox_head = model.roi_head.bbox_head
    bbox_head = bbox_head[-1] if isinstance(bbox_head, list) else bbox_head
    rpn = model.get('rpn_head') or {}
    return dict(anchors=rpn.get('anchor_generator'),
                rpn_coder=rpn.get('bbox_coder'),
                box_coder=bbox_head.get('bbox_coder'),
                reg_class_agnostic=bbox_head.get('reg_class_agnostic'),
                resize=[step for _, step in iter_pipeline_steps(
                    get_test_pipeline_cfg(cfg))
                    if 'Resize' in cfg_type_name(step)])


def config_meta(cfg, classes: List[str]) -> Dict[str, str]:
    """What an ONNX file must agree on with the config that loads it.

    Args:
        cfg (Config): The detector config.
        classes (List[str]): Class names of the model.

    Returns:
        dict: ``metadata_props`` entries (str to JSON str).
    """
    pre = cfg.model.data_preprocessor
    roi_head = cfg.model.roi_head
    return dict(
        config=osp.basename(cfg.filename or ''),
        classes=json.dumps(list(classes)),
        num_classes=json.dumps(int(roi_head.bbox_head.num_classes)),
        test_scale=json.dumps(_test_scale(cfg)),
        pad_size_divisor=json.dumps(pre.get('pad_size_divisor', 1)),
        mean=json.dumps(list(pre.get('mean', []))),
        std=json.dumps(list(pre.get('std', []))),
        bgr_to_rgb=json.dumps(bool(pre.get('bgr_to_rgb', False))),
        with_mask=json.dumps(roi_head.get('mask_head') is not None),
        needs_proposals=json.dumps(cfg.model.get('rpn_head') is None),
        geometry=json.dumps(_geometry(cfg), sort_keys=True, default=str))


def _write_meta(path: str, meta: Dict[str, str]) -> None:
    import onnx
    model = onnx.load(path)
    del model.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = f'rcnn_plugin.{key}', value
    onnx.save(model, path)


def _export(module: nn.Module, args: tuple, path: str, in_names: List[str],
            out_names: List[str], dynamic: Dict, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            module, args, path, input_names=in_names,
            output_names=out_names, dynamic_axes=dynamic or None,
            opset_version=opset, do_constant_folding=True, dynamo=False)


def export_onnx(model: nn.Module, cfg, path: str, classes: List[str],
                image: torch.Tensor, opset: int = 17,
                dynamic: bool = False) -> Dict[str, str]:
    """Export ``model``'s graphs (see :mod:`.graphs`) with metadata.

    Args:
        model (nn.Module): The mmdet detector (eval mode, CPU).
        cfg (Config): Its config.
        path (str): Output file of graph ``features``.
        classes (List[str]): Class names stored in the files.
        image (Tensor): Sample preprocessed input ``(1, 3, H, W)``; with
            ``dynamic=False`` the graph is fixed to this size.
        opset (int): ONNX opset, >= 16 (``RoiAlign`` half-pixel mode).
            Defaults to 17.
        dynamic (bool): Dynamic batch, height and width. Defaults to False.

    Returns:
        dict: Graph name to written file.
    """
    if opset < 16:
        raise ValueError(f'--opset {opset}: RoiAlign with aligned=True '
                         'needs opset >= 16')
    check_exportable(model)
    model = model.cpu().eval()
    roi_head = model.roi_head
    paths = graph_paths(path, getattr(roi_head, 'with_mask', False))
    # The head graphs first: one that cannot be exported stops the export
    # before any file of it is written over an earlier export's.
    heads = {name: (BBoxGraph if name == 'bbox' else MaskGraph)(roi_head)
             for name in ('bbox', 'mask') if name in paths}
    # One id in every graph of this export: a neighbour left from another
    # export (model.mask.onnx beside a new model.onnx) is refused at load.
    meta = dict(config_meta(cfg, classes), export_id=uuid.uuid4().hex)
    feat_graph = FeatureGraph(model)
    with torch.no_grad():
        outs = feat_graph(image)
    # Without RPN (Fast R-CNN) the graph gives the L features only.
    num_levels = len(outs) // 3 if feat_graph.with_rpn else len(outs)
    names = [f'feat{i}' for i in range(num_levels)]
    if feat_graph.with_rpn:
        names += ([f'rpn_score{i}' for i in range(num_levels)]
                  + [f'rpn_delta{i}' for i in range(num_levels)])
    axes = {}
    if dynamic:
        axes = {n: {0: 'batch', 2: f'h{n}', 3: f'w{n}'} for n in names}
        axes['image'] = {0: 'batch', 2: 'height', 3: 'width'}
    _export(feat_graph, (image, ), path, ['image'], names, axes, opset)
    _write_meta(path, dict(meta, graph='features', num_levels=str(
        num_levels), dynamic=json.dumps(dynamic),
        input_shape=json.dumps(list(image.shape))))
    feats = outs[:num_levels]
    h, w = image.shape[2:]
    rois = torch.tensor([[0, 0, 0, w / 2, h / 2], [0, w / 4, h / 4, w, h],
                         [0, 10, 10, 40, 30]], dtype=torch.float32)
    for name, graph in heads.items():
        used = feats[:graph.extractor.num_inputs]
        in_names = [f'feat{i}' for i in range(len(used))] + ['rois']
        out_names = (['cls_score', 'bbox_pred'] if name == 'bbox'
                     else ['mask_preds'])
        # The batch is dynamic here also in a static export (batches run
        # the static features graph image by image).
        axes = {n: {0: 'batch', 2: f'h{n}', 3: f'w{n}'} if dynamic else
                {0: 'batch'} for n in in_names[:-1]}
        axes.update({n: {0: 'rois'} for n in ['rois'] + out_names})
        _export(graph, (*used, rois), paths[name], in_names, out_names,
                axes, opset)
        _write_meta(paths[name], dict(meta, graph=name,
                                      num_inputs=str(len(used))))
    return paths
