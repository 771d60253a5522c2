"""Run exported graphs in ONNX Runtime or OpenVINO inside mmdet's model.

:func:`attach_graphs` replaces the detector's ``extract_feat``, RPN
``forward`` and RoI head ``_bbox_forward`` / ``_mask_forward`` by the
exported graphs. Everything else is mmdet's own Python code, unchanged:
the data preprocessor (resize, normalise, pad), proposal decoding and NMS
(``rpn_head.predict_by_feat``), box decoding, per-class NMS and rescaling
(``bbox_head.predict_by_feat``) and mask pasting. A detector without RPN
(Fast R-CNN) keeps mmdet's ``predict``, which takes the proposals of each
data sample (``LoadProposals`` in the test pipeline, resized with the
image) to the box graph.
"""
import json
import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from .export import config_meta, graph_paths

__all__ = ['BACKENDS', 'GraphRunner', 'attach_graphs', 'check_meta',
           'require_backend',
           'read_meta']

BACKENDS = ('onnxruntime', 'openvino')
_EXTRA = dict(onnxruntime='deploy', openvino='deploy')


def require_backend(backend: str):
    """The backend's module; an ImportError naming the extra to install."""
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: expected one of {BACKENDS}')
    try:
        if backend == 'onnxruntime':
            import onnxruntime as module
        else:
            import openvino as module
    except ImportError as err:
        raise ImportError(
            f'backend {backend!r} needs the package {backend}: pip install '
            f'-e ".[{_EXTRA[backend]}]"') from err
    return module


def read_meta(path: str) -> Dict[str, str]:
    """``rcnn_plugin.*`` entries of an ONNX file's ``metadata_props``.

    Args:
        path (str): ONNX file.

    Returns:
        dict: Key (without the prefix) to value.
    """
    try:
        import onnx
    except ImportError as err:
        raise ImportError('reading ONNX files needs onnx: pip install -e '
                          '".[deploy]"') from err
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError: not an ONNX file
        raise ValueError(f'{path} is not an ONNX file ({type(err).__name__}'
                         f': {err})') from err
    return {p.key[len('rcnn_plugin.'):]: p.value
            for p in model.metadata_props
            if p.key.startswith('rcnn_plugin.')}


def check_meta(path: str, cfg, classes: List[str]) -> Dict[str, str]:
    """Refuse an ONNX file exported for another config, naming both.

    Args:
        path (str): ONNX file.
        cfg (Config): The config it is loaded with.
        classes (List[str]): Class names of that config.

    Returns:
        dict: The file's metadata.
    """
    meta = read_meta(path)
    if 'classes' not in meta:
        raise ValueError(f'{path} has no rcnn_plugin metadata: export it '
                         'with tools/deployment/export_onnx.py')
    if meta.get('graph', 'features') != 'features':
        raise ValueError(f'{path} is the {meta["graph"]} graph of an export;'
                         ' give its features graph (the file without '
                         f'.{meta["graph"]})')
    want = config_meta(cfg, classes)
    # Files exported before Fast R-CNN was exportable all had an RPN;
    # before the geometry was recorded, it is not compared.
    meta.setdefault('needs_proposals', 'false')
    meta.setdefault('geometry', want['geometry'])
    _check_mask(path, meta, json.loads(want['with_mask']),
                f'config {want["config"]}')
    if meta['needs_proposals'] == 'true' and meta['test_scale'] == 'null' \
            and want['test_scale'] != 'null':
        raise ValueError(
            f'{path} is a Fast R-CNN export of an older rcnn_plugin, which '
            'did not record the test scale (its Resize sits inside '
            'ProposalBroadcaster), so it cannot be checked against config '
            f'{want["config"]}; export the ONNX file again')
    for key in ('num_classes', 'classes', 'test_scale', 'mean', 'std',
                'pad_size_divisor', 'bgr_to_rgb', 'needs_proposals',
                'geometry'):
        theirs, ours = json.loads(meta[key]), json.loads(want[key])
        if key == 'geometry' and theirs != ours:  # name what differs
            differ = sorted(k for k in ours if theirs.get(k) != ours[k])
            raise ValueError(
                f'{path} was exported for config {meta["config"]} with '
                f'other {", ".join(differ)} than config {want["config"]} '
                '(anchors, box coders and the test resize run from the '
                'loading config); export the ONNX file again from this '
                'config')
        if theirs != ours:
            raise ValueError(
                f'{path} was exported for config {meta["config"]} with '
                f'{key}={meta[key]}, but config {want["config"]} has '
                f'{key}={want[key]}; export the ONNX file again from this '
                'config')
    return meta


def _check_mask(path: str, meta: Dict[str, str], with_mask: bool,
                loader: str) -> None:
    """Refuse an export with a mask graph for a model without mask head,
    and the other way round: the model's untrained PyTorch mask head would
    run, or the masks would be dropped, without a word. An older export
    that did not record ``with_mask`` has no mask graph."""
    exported = json.loads(meta.get('with_mask', 'false'))
    if exported != with_mask:
        def has(mask: bool) -> str:
            return 'a mask head' if mask else 'no mask head'
        raise ValueError(
            f'{path} was exported from config {meta.get("config")} with '
            f'{has(exported)}, but {loader} has {has(with_mask)}: load it '
            'with the config it was exported from, or export the ONNX file '
            f'again from {loader}')


def check_neighbours(meta: Dict[str, str], paths: Dict[str, str]) -> None:
    """Refuse a head graph file that is not of the same export as the
    features graph (``meta``): left from an earlier or another export."""
    for name, path in paths.items():
        if name == 'features':
            continue
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} (graph {name}) is missing: '
                                    f'export {paths["features"]} again')
        other = read_meta(path)
        if other.get('graph') != name or any(
                other.get(k) != meta.get(k)
                for k in ('export_id', 'config', 'classes')):
            raise ValueError(
                f'{path} is not of the same export as {paths["features"]} '
                f'(config {other.get("config")} against '
                f'{meta.get("config")}, export id {other.get("export_id")} '
                f'against {meta.get("export_id")}): export again, or keep '
                'the files of one export together')


class GraphRunner:
    """One exported graph in ONNX Runtime or OpenVINO (CPU).

    Args:
        path (str): ONNX file.
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        num_threads (int, optional): Intra-op threads; None uses torch's
            count. Defaults to None.
    """

    def __init__(self, path: str, backend: str = 'onnxruntime',
                 num_threads: Optional[int] = None) -> None:
        module = require_backend(backend)
        threads = num_threads or torch.get_num_threads()
        self.backend = backend
        if backend == 'onnxruntime':
            opts = module.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self.session = module.InferenceSession(
                path, opts, providers=['CPUExecutionProvider'])
            self.inputs = [i.name for i in self.session.get_inputs()]
        else:
            core = module.Core()
            compiled = core.compile_model(
                core.read_model(path), 'CPU',
                {'INFERENCE_NUM_THREADS': threads,
                 'PERFORMANCE_HINT': 'LATENCY',
                 # f32, not the bf16 default on CPUs with AMX / AVX512-bf16.
                 'INFERENCE_PRECISION_HINT': 'f32'})
            self.outputs = compiled.outputs
            self.request = compiled.create_infer_request()

    def __call__(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        """Run on float32 inputs in the graph's input order."""
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
        if self.backend == 'onnxruntime':
            return self.session.run(None, dict(zip(self.inputs, arrays)))
        result = self.request.infer(arrays)
        return [np.array(result[o]) for o in self.outputs]


def _pad_to(image: torch.Tensor, shape: List[int]) -> torch.Tensor:
    """Zero-pad ``(1, 3, h, w)`` at the bottom and right to the static
    graph's ``(1, 3, H, W)``, as mmdet pads a batch to its largest input
    (0 is the mean colour after normalisation)."""
    h, w = image.shape[2:]
    if h > shape[2] or w > shape[3]:
        raise ValueError(
            f'input {h}x{w} is larger than the static ONNX graph '
            f'({shape[2]}x{shape[3]}); export with --dynamic')
    if (h, w) != tuple(shape[2:]):
        warnings.warn(
            f'input {h}x{w} padded to the static graph ({shape[2]}x'
            f"{shape[3]}): detections equal PyTorch's on the padded input; "
            'near the bottom and right borders they can differ from '
            "PyTorch's on this image alone; export with --dynamic for "
            'images of several sizes', stacklevel=2)
    return nn.functional.pad(image, (0, shape[3] - w, 0, shape[2] - h))


def attach_graphs(model: nn.Module, path: str, backend: str = 'onnxruntime',
                  num_threads: Optional[int] = None,
                  record: Optional[Dict[str, list]] = None) -> Dict:
    """Make ``model`` run its exported graphs instead of its layers.

    Args:
        model (nn.Module): The mmdet detector built from the same config.
        path (str): Graph ``features`` file (siblings found by name).
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
            Defaults to 'onnxruntime'.
        num_threads (int, optional): Threads per graph. Defaults to None.
        record (dict, optional): When given, graph inputs are appended to
            ``record[graph]`` (calibration data). Defaults to None.

    Returns:
        dict: The file's metadata.
    """
    meta = read_meta(path)
    with_rpn = not json.loads(meta.get('needs_proposals', 'false'))
    if with_rpn != (getattr(model, 'rpn_head', None) is not None):
        raise ValueError(
            f'{path} was exported from a detector '
            f"{'with' if with_rpn else 'without'} RPN, but this model "
            f"{'has none' if with_rpn else 'has one'}; load it with the "
            f"config it was exported from ({meta.get('config')})")
    with_mask = bool(getattr(model.roi_head, 'with_mask', False))
    _check_mask(path, meta, with_mask, 'this model')
    paths = graph_paths(path, with_mask)
    check_neighbours(meta, paths)
    runs = {k: GraphRunner(p, backend, num_threads) for k, p in paths.items()}
    levels, state = int(meta['num_levels']), {}
    static = not json.loads(meta['dynamic'])
    shape = json.loads(meta['input_shape'])

    def call(name: str, tensors) -> List[torch.Tensor]:
        arrays = [t.detach().cpu().float().numpy() for t in tensors]
        if record is not None:
            record.setdefault(name, []).append(arrays)
        return [torch.from_numpy(a) for a in runs[name](arrays)]

    def extract_feat(image: torch.Tensor):
        if static:  # fixed (1, 3, H, W): pad, one image at a time
            runs_ = [call('features', [_pad_to(im[None], shape)])
                     for im in image]
            outs = [torch.cat(level) for level in zip(*runs_)]
        else:
            outs = call('features', [image])
        if with_rpn:
            state['rpn'] = (outs[levels:2 * levels], outs[2 * levels:])
        return tuple(outs[:levels])

    def head(name: str) -> Callable:
        used = int(read_meta(paths[name])['num_inputs'])

        def forward(x, rois=None, *args, **kwargs) -> dict:
            outs = call(name, [*x[:used], rois])
            if name == 'bbox':
                return dict(cls_score=outs[0], bbox_pred=outs[1],
                            bbox_feats=None)
            return dict(mask_preds=outs[0], mask_feats=None)
        return forward

    model.extract_feat = extract_feat
    if with_rpn:
        model.rpn_head.forward = lambda feats: state.pop('rpn')
    model.roi_head._bbox_forward = head('bbox')
    if 'mask' in paths:
        model.roi_head._mask_forward = head('mask')
    # The graphs hold the weights: free the PyTorch copies of the layers
    # that no longer run (post-processing needs none of them).
    model.backbone, model.neck = nn.Identity(), nn.Identity()
    return meta
