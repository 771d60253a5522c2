"""Mask R-CNN export: boxes and RLE masks equal PyTorch's."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from rcnn_plugin.apis import (
    OnnxPredictor,
    Predictor,
    capture_input,
    predict_dicts,
    self_check,
)
from rcnn_plugin.deployment import export_onnx

from conftest import REPO, shrink_model

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")


def test_mask_rcnn_export_equals_pytorch(tmp_path):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'balloon',
        'mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py'))
    cfg.model = shrink_model(cfg.model)
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # random weights: low scores
    config = str(tmp_path / 'tiny_mask-rcnn.py')
    cfg.dump(config)
    torch.manual_seed(0)
    predictor = Predictor(config, None, 'cpu')
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3),
                                              np.uint8)
    onnx = str(tmp_path / 'mask.onnx')
    paths = export_onnx(predictor.model, predictor.inferencer.cfg, onnx,
                        predictor.classes, capture_input(predictor, image))
    assert set(paths) == {'features', 'bbox', 'mask'}
    ref = predict_dicts(predictor, [image])
    onnx_pred = OnnxPredictor(config, onnx)
    assert self_check(ref, onnx_pred, [image], 0.99)['per_image'] == [1.0]
    out = predict_dicts(onnx_pred, [image])
    assert ref[0] and 'segmentation' in ref[0][0]
    assert [d['segmentation'] for d in out[0]] == [
        d['segmentation'] for d in ref[0]]
