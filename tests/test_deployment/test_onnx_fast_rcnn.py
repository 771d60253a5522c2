"""Fast R-CNN export: proposals as an input, detections equal PyTorch's.

A shrunk configs/fast_rcnn model on the tiny synthetic dataset, with a
proposal file for its 4 val images (the last one has no proposals).
"""
import importlib.util
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from rcnn_plugin.apis import (
    OnnxPredictor,
    Predictor,
    capture_input,
    collect_images,
    predict_dicts,
    read_image,
    self_check,
)
from rcnn_plugin.deployment import export_onnx, read_meta

from conftest import REPO, shrink_model

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")

BACKENDS = ['onnxruntime'] + (
    ['openvino'] if importlib.util.find_spec('openvino') else [])


def _tool(*parts):
    spec = importlib.util.spec_from_file_location(
        '_tool_' + parts[-1][:-3], osp.join(REPO, 'tools', *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_proposals(root: str, path: str) -> dict:
    """Random boxes (96x96 images), best first; none for the last image."""
    rng = np.random.default_rng(0)
    props = {}
    names = sorted(osp.basename(p) for p in collect_images(
        osp.join(root, 'val')))
    for i, name in enumerate(names):
        num = 0 if i == len(names) - 1 else 30
        xy = rng.uniform(0, 70, (num, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(6, 26, (num, 2))], 1)
        props[f'val/{name}'] = InstanceData(
            bboxes=boxes.astype(np.float32),
            scores=np.sort(rng.uniform(0, 1, num))[::-1].astype(np.float32))
    with open(path, 'wb') as f:
        pickle.dump(props, f)
    return props


@pytest.fixture(scope='module')
def fast(tmp_path_factory, synthetic_cells):
    """Config, proposals, val images, PyTorch predictor, static export."""
    tmp = tmp_path_factory.mktemp('fast_rcnn')
    props_file = str(tmp / 'val.pkl')
    props = _write_proposals(synthetic_cells, props_file)
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'fast_rcnn',
        'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py'))
    cfg.model = shrink_model(cfg.model)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadProposals'),
        dict(type='ProposalBroadcaster', transforms=[
            dict(type='Resize', scale=(128, 128), keep_ratio=True)]),
        dict(type='PackDetInputs', meta_keys=(
            'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
    ]
    cfg.test_dataloader.dataset = dict(
        type='SyntheticCellsDataset', data_root=synthetic_cells + '/',
        ann_file='annotations/val.json', data_prefix=dict(img=''),
        proposal_file=props_file, test_mode=True, pipeline=pipeline)
    cfg.val_dataloader.dataset = cfg.test_dataloader.dataset
    config = str(tmp / 'tiny_fast-rcnn.py')
    cfg.dump(config)
    paths = sorted(collect_images(osp.join(synthetic_cells, 'val')))
    images = [read_image(p) for p in paths]
    proposals = [props[f'val/{osp.basename(p)}'] for p in paths]
    torch.manual_seed(0)
    torch_pred = Predictor(config, None, 'cpu')
    onnx = str(tmp / 'fast.onnx')
    sample = capture_input(torch_pred, images[0], proposals[0])
    paths_out = export_onnx(torch_pred.model, torch_pred.inferencer.cfg,
                            onnx, torch_pred.classes, sample)
    return dict(config=config, images=images, proposals=proposals,
                props_file=props_file, val=osp.join(synthetic_cells, 'val'),
                torch=torch_pred, onnx=onnx, paths=paths_out)


def test_feature_graph_has_no_rpn_outputs(fast):
    import onnx
    assert set(fast['paths']) == {'features', 'bbox'}
    meta = read_meta(fast['onnx'])
    assert json.loads(meta['needs_proposals']) is True
    outs = [o.name for o in onnx.load(fast['onnx']).graph.output]
    assert outs == [f'feat{i}' for i in range(int(meta['num_levels']))]
    # RoIs stay an input of the box graph, as for Faster R-CNN.
    inputs = [i.name for i in onnx.load(fast['paths']['bbox']).graph.input]
    assert inputs[-1] == 'rois'


@pytest.mark.parametrize('backend', BACKENDS)
def test_fast_rcnn_onnx_equals_pytorch(fast, backend):
    images, props = fast['images'][:3], fast['proposals'][:3]
    reference = predict_dicts(fast['torch'], images, proposals=props)
    assert all(reference)
    onnx_pred = OnnxPredictor(fast['config'], fast['onnx'], backend)
    report = self_check(reference, onnx_pred, images, 0.99, props)
    assert report['per_image'] == [1.0, 1.0, 1.0]
    assert report['max_box_diff'] < 1e-2
    assert report['max_score_diff'] < 1e-4


def test_zero_proposals_through_onnx(fast):
    onnx_pred = OnnxPredictor(fast['config'], fast['onnx'])
    image, props = fast['images'][0], fast['proposals'][0]
    empty = np.zeros((0, 4), np.float32)
    for pred in (fast['torch'], onnx_pred):
        assert predict_dicts(pred, [image], proposals=[empty]) == [[]]
    # A batch mixing an image without proposals and one with some.
    out = [pred.predict([image, image], proposals=[empty, props])
           for pred in (fast['torch'], onnx_pred)]
    assert len(out[0][0]) == len(out[1][0]) == 0
    assert len(out[1][1]) == len(out[0][1]) > 0
    assert torch.allclose(out[0][1].bboxes, out[1][1].bboxes, atol=1e-2)


def test_export_tool_checks_with_dataset_proposals(fast, tmp_path, capsys):
    out = str(tmp_path / 'tool.onnx')
    status = _tool('deployment', 'export_onnx.py').main([
        fast['config'], 'none', '--out', out, '--backends', *BACKENDS])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    for backend in BACKENDS:  # 4 test images, the last without proposals
        assert (f'check {backend} vs PyTorch on 4 images (3 with '
                'detections): match fraction 1.0000') in printed.out
    assert json.loads(read_meta(out)['needs_proposals']) is True
    status = _tool('deployment', 'export_onnx.py').main([
        fast['config'], 'none', '--out', out, '--check-images', fast['val']])
    assert status == 2
    assert 'needs proposals for each check image' in capsys.readouterr().err


@pytest.mark.parametrize('backend', ['pytorch', 'onnxruntime'])
def test_infer_refuses_images_without_proposals(fast, tmp_path, backend):
    with pytest.raises(SystemExit) as exc:
        _tool('infer.py').main([
            fast['config'], 'none', fast['val'], '--out-dir',
            str(tmp_path), '--backend', backend, '--onnx', fast['onnx']])
    assert 'is a Fast R-CNN (no RPN): it needs precomputed proposals' in \
        str(exc.value) and '--proposals FILE' in str(exc.value)
    with pytest.raises(ValueError, match='needs precomputed proposals'):
        fast['torch'].predict(fast['images'][:1])


def test_infer_tool_with_proposals_same_results(fast, tmp_path):
    tool = _tool('infer.py')
    results = {}
    for backend, pred in (('pytorch', fast['torch']), (
            'onnxruntime', OnnxPredictor(fast['config'], fast['onnx']))):
        args = tool.parse_args([
            fast['config'], 'none', fast['val'], '--out-dir',
            str(tmp_path / backend), '--score-thr', '0.05', '--no-progress',
            '--no-vis', '--proposals', fast['props_file']])
        assert tool.infer(args, pred)['processed'] == 4
        results[backend] = json.loads(
            (tmp_path / backend / 'results.json').read_text())
    ref, got = results['pytorch'], results['onnxruntime']
    assert ref and len(ref) == len(got)
    assert {r['image_id'] for r in ref} == {0, 1, 2}  # image 3: none
    for r in ref:  # every PyTorch entry has its ONNX twin
        assert any(o['image_id'] == r['image_id']
                   and o['category_id'] == r['category_id']
                   and np.abs(np.subtract(o['bbox'], r['bbox'])).max() < 0.1
                   and abs(o['score'] - r['score']) < 1e-3 for o in got), r
