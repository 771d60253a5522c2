"""ONNX export: graphs equal PyTorch, dynamic size, refusals."""
import json

import numpy as np
import pytest
from mmengine.config import Config

from rcnn_plugin.apis import OnnxPredictor, predict_dicts, self_check
from rcnn_plugin.deployment import check_exportable, check_meta, read_meta

from conftest import export_tiny

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")


def test_export_equals_pytorch(ort_predictor, torch_predictor, static_onnx,
                               cell_images):
    reference = predict_dicts(torch_predictor, cell_images)
    assert all(reference)
    report = self_check(reference, ort_predictor, cell_images,
                        min_match=0.99)
    assert report['per_image'] == [1.0, 1.0]
    assert report['max_box_diff'] < 1e-2
    assert report['max_score_diff'] < 1e-4
    meta = read_meta(static_onnx)
    assert json.loads(meta['classes']) == torch_predictor.classes
    assert meta['graph'] == 'features'


def test_image_without_detections(ort_predictor, torch_predictor,
                                  cell_images):
    preds = (torch_predictor, ort_predictor)
    for pred in preds:  # nothing passes: the empty path of both
        pred.model.roi_head.test_cfg.score_thr = 1.01
    try:
        out = [predict_dicts(p, cell_images[:1]) for p in preds]
    finally:
        for pred in preds:
            pred.model.roi_head.test_cfg.score_thr = 0.05
    assert out[0] == out[1] == [[]]


def test_dynamic_image_size(tmp_path, torch_predictor, deploy_config,
                            cell_images):
    path = str(tmp_path / 'dyn.onnx')
    export_tiny(torch_predictor, cell_images[0], path, dynamic=True)
    wide = np.ascontiguousarray(np.concatenate(cell_images, axis=1))
    images = [cell_images[0], wide]  # 320x320 and 160x320 model inputs
    reference = predict_dicts(torch_predictor, images)
    report = self_check(reference, OnnxPredictor(deploy_config, path),
                        images, min_match=0.99)
    assert report['images'] == 2


def test_static_graph_refuses_larger_input(tmp_path, torch_predictor,
                                           deploy_config, cell_images):
    path = str(tmp_path / 'static.onnx')  # fixed to a 160x320 input
    export_tiny(torch_predictor,
                np.ascontiguousarray(cell_images[0][:48]), path,
                dynamic=False)
    with pytest.raises(ValueError, match='export with --dynamic'):
        OnnxPredictor(deploy_config, path).predict([cell_images[0]])


def test_other_config_refused(tmp_path, deploy_config, static_onnx):
    other = tmp_path / 'two_classes.py'
    other.write_text(f"_base_ = '{deploy_config}'\nmodel = dict(roi_head="
                     'dict(bbox_head=dict(num_classes=2)))\n')
    cfg = Config.fromfile(str(other))
    with pytest.raises(ValueError) as err:
        check_meta(static_onnx, cfg, ['a', 'b'])
    assert 'tiny_faster-rcnn.py' in str(err.value)
    assert 'two_classes.py' in str(err.value)
    assert 'num_classes' in str(err.value)


def test_other_box_geometry_and_wrong_files_are_refused(
        tmp_path, deploy_config, static_onnx):
    # Anchors and box decoding run from the loading config: other target
    # stds decoded every box wrongly, without a word.
    other = tmp_path / 'other_stds.py'
    other.write_text(f"_base_ = '{deploy_config}'\nmodel = dict(roi_head="
                     'dict(bbox_head=dict(bbox_coder=dict(target_stds='
                     '[0.2, 0.2, 0.4, 0.4]))))\n')
    cfg = Config.fromfile(deploy_config)
    classes = json.loads(read_meta(static_onnx)['classes'])
    assert check_meta(static_onnx, cfg, classes)  # its own config: fine
    with pytest.raises(ValueError, match='with other box_coder than'):
        check_meta(static_onnx, Config.fromfile(str(other)), classes)
    # a head graph, or a file that is not ONNX, as the model: sentences
    with pytest.raises(ValueError, match='is the bbox graph of an export'):
        check_meta(static_onnx.replace('.onnx', '.bbox.onnx'), cfg, classes)
    (tmp_path / 'x.pth').write_bytes(b'not onnx at all')
    with pytest.raises(ValueError, match='is not an ONNX file'):
        read_meta(str(tmp_path / 'x.pth'))


def test_a_head_graph_of_another_export_is_refused(tmp_path, deploy_config,
                                                   static_onnx,
                                                   torch_predictor,
                                                   cell_images):
    import shutil
    path = str(tmp_path / 'tiny.onnx')
    export_tiny(torch_predictor, cell_images[0], path, dynamic=False)
    assert read_meta(path)['export_id'] == read_meta(
        path.replace('.onnx', '.bbox.onnx'))['export_id']
    # The bbox graph of another export, left beside this features graph.
    shutil.copyfile(static_onnx.replace('.onnx', '.bbox.onnx'),
                    path.replace('.onnx', '.bbox.onnx'))
    with pytest.raises(ValueError, match=r'tiny\.bbox\.onnx is not of the '
                       'same export as'):
        OnnxPredictor(deploy_config, path)


def test_module_without_export_path(torch_predictor):
    from mmcv.ops import RoIPool
    extractor = torch_predictor.model.roi_head.bbox_roi_extractor
    original = extractor.roi_layers[0]
    extractor.roi_layers[0] = RoIPool(7, 0.25)
    try:
        with pytest.raises(ValueError, match=r'roi_layers\.0 \(RoIPool\).*'
                           "type='RoIAlign'"):
            check_exportable(torch_predictor.model)
    finally:
        extractor.roi_layers[0] = original


def test_shared_head_and_cascade_are_refused_with_a_sentence():
    # A C4 config failed inside the trace with a matmul shape error (and
    # after model.onnx was written); a cascade got a ModuleList message.
    from types import SimpleNamespace

    from torch import nn
    c4 = SimpleNamespace(named_modules=lambda: [], roi_head=SimpleNamespace(
        with_shared_head=True))
    with pytest.raises(ValueError, match='shared head .* FPN config'):
        check_exportable(c4)
    cascade = SimpleNamespace(named_modules=lambda: [],
                              roi_head=SimpleNamespace(
                                  bbox_roi_extractor=nn.ModuleList()))
    with pytest.raises(ValueError, match='one box head per stage'):
        check_exportable(cascade)


def _mask_config(deploy_config: str, path: str) -> str:
    """The tiny config as a Mask R-CNN (same classes, same box side)."""
    cfg = Config.fromfile(deploy_config)
    roi = cfg.model.roi_head
    cfg.model.type = 'MaskRCNN'
    roi.mask_roi_extractor = dict(
        type='SingleRoIExtractor', out_channels=16,
        roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
        featmap_strides=[4, 8, 16, 32])
    roi.mask_head = dict(
        type='FCNMaskHead', num_convs=1, in_channels=16,
        conv_out_channels=16, num_classes=roi.bbox_head.num_classes,
        loss_mask=dict(type='CrossEntropyLoss', use_mask=True))
    cfg.model.train_cfg.rcnn.mask_size = 28
    cfg.model.test_cfg.rcnn.mask_thr_binary = 0.5
    cfg.dump(path)
    return path


def _rewrite_meta(src: str, dst: str, **changes) -> str:
    """A copy of an export (features and bbox graphs) whose metadata has
    ``changes`` (None: the key removed, as in an older export)."""
    import onnx

    from rcnn_plugin.deployment import graph_paths
    for name, path in graph_paths(src).items():
        model = onnx.load(path)
        meta = dict(read_meta(path), **changes)
        del model.metadata_props[:]
        for key, value in meta.items():
            if value is not None:
                entry = model.metadata_props.add()
                entry.key, entry.value = f'rcnn_plugin.{key}', value
        onnx.save(model, graph_paths(dst)[name])
    return dst


def test_export_of_the_other_architecture_is_refused(
        tmp_path, deploy_config, static_onnx, torch_predictor):
    # Faster export + Mask config: the random PyTorch mask head ran; Mask
    # export + Faster config: the masks were dropped. Without a word.
    import copy

    from rcnn_plugin.apis import Predictor
    from rcnn_plugin.deployment import attach_graphs
    classes = torch_predictor.classes
    faster = Config.fromfile(deploy_config)
    mask = _mask_config(deploy_config, str(tmp_path / 'tiny_mask-rcnn.py'))
    with pytest.raises(ValueError, match=r'tiny\.onnx was exported from '
                       'config tiny_faster-rcnn.py with no mask head, but '
                       'config tiny_mask-rcnn.py has a mask head'):
        check_meta(static_onnx, Config.fromfile(mask), classes)
    with pytest.raises(ValueError, match='no mask head, but this model has '
                       'a mask head'):
        attach_graphs(Predictor(mask, None).model, static_onnx)
    as_mask = _rewrite_meta(static_onnx, str(tmp_path / 'm.onnx'),
                            with_mask='true')
    with pytest.raises(ValueError, match='with a mask head, but config '
                       'tiny_faster-rcnn.py has no mask head'):
        check_meta(as_mask, faster, classes)
    with pytest.raises(ValueError, match='but this model has no mask head'):
        attach_graphs(copy.deepcopy(torch_predictor.model), as_mask)
    # An older export without with_mask: a Faster R-CNN.
    old = _rewrite_meta(static_onnx, str(tmp_path / 'old.onnx'),
                        with_mask=None)
    assert 'with_mask' not in read_meta(old)
    assert check_meta(old, faster, classes)
    with pytest.raises(ValueError, match='with no mask head, but config'):
        check_meta(old, Config.fromfile(mask), classes)
