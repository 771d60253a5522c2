"""ONNX metadata check of configs whose test dataset is wrapped."""
import copy
import importlib.util
import json
import os.path as osp

import pytest
from mmengine.config import Config

from rcnn_plugin.apis import OnnxPredictor, predict_dicts
from rcnn_plugin.deployment import check_meta, config_meta

from conftest import REPO

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")

WRAPPERS = dict(
    ClassSubsetDataset=lambda ds: dict(type='ClassSubsetDataset',
                                       dataset=ds),
    SeededSplitDataset=lambda ds: dict(type='SeededSplitDataset',
                                       dataset=ds, split_dir='split',
                                       part='val'),
    ConcatDataset=lambda ds: dict(type='ConcatDataset', datasets=[ds]),
    RepeatDataset_ClassSubsetDataset=lambda ds: dict(
        type='RepeatDataset', times=1,
        dataset=dict(type='ClassSubsetDataset', dataset=ds)),
)

WRAPPED_CONFIG = """
_base_ = '{base}'
test_dataloader = dict(dataset=dict(
    _delete_=True, type='ClassSubsetDataset',
    dataset={{{{_base_.test_dataloader.dataset}}}}))
"""


def _wrapped(config: str, wrapper: str, scale: tuple) -> Config:
    cfg = Config.fromfile(config)
    dataset = copy.deepcopy(cfg.test_dataloader.dataset.to_dict())
    for step in dataset['pipeline']:
        if step['type'] == 'Resize':
            step['scale'] = scale
    cfg.test_dataloader.dataset = WRAPPERS[wrapper](dataset)
    return cfg


@pytest.mark.parametrize('wrapper', sorted(WRAPPERS))
def test_wrapped_test_dataset_scale_is_compared(wrapper, static_onnx,
                                                deploy_config,
                                                torch_predictor):
    classes = torch_predictor.classes
    same = _wrapped(deploy_config, wrapper, (320, 320))
    assert 'pipeline' not in same.test_dataloader.dataset
    assert json.loads(config_meta(same, classes)['test_scale']) == [320, 320]
    check_meta(static_onnx, same, classes)  # the export's scale: accepted
    other = _wrapped(deploy_config, wrapper, (640, 640))
    with pytest.raises(ValueError, match=r'test_scale=\[320, 320\], but '
                       r'config .* has test_scale=\[640, 640\]'):
        check_meta(static_onnx, other, classes)


def test_export_and_load_a_wrapped_config(tmp_path, deploy_config,
                                          cell_images):
    config = tmp_path / 'tiny_class-subset.py'
    config.write_text(WRAPPED_CONFIG.format(base=deploy_config))
    spec = importlib.util.spec_from_file_location(
        '_export_tool', osp.join(REPO, 'tools', 'deployment',
                                 'export_onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'wrapped.onnx')
    # default check images: the first ones of the wrapped test split
    assert tool.main([str(config), 'none', '--out', out]) == 0
    onnx_pred = OnnxPredictor(str(config), out)  # runs check_meta
    assert json.loads(onnx_pred.meta['test_scale']) == [320, 320]
    assert predict_dicts(onnx_pred, cell_images[:1])


def test_fast_rcnn_test_scale_inside_the_proposal_broadcaster():
    # Fast R-CNN resizes inside ProposalBroadcaster: its exports recorded
    # no test scale, so a config at another scale was not refused.
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'fast_rcnn',
                                   'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py'))
    meta = config_meta(cfg, ['RBC', 'WBC', 'Platelets'])
    steps = [s for s in cfg.test_dataloader.dataset.pipeline
             if s['type'] == 'ProposalBroadcaster']
    scale = list(steps[0]['transforms'][0]['scale'])
    assert json.loads(meta['test_scale']) == scale
    other = copy.deepcopy(cfg)
    for step in other.test_dataloader.dataset.pipeline:
        if step['type'] == 'ProposalBroadcaster':
            step['transforms'][0]['scale'] = (320, 320)
    other_meta = config_meta(other, ['RBC', 'WBC', 'Platelets'])
    assert other_meta['test_scale'] != meta['test_scale']
    assert other_meta['geometry'] != meta['geometry']


def test_an_older_fast_rcnn_export_is_refused_saying_why(monkeypatch):
    # exports made before the fix recorded no scale: the plain mismatch
    # message named the same config twice
    from rcnn_plugin.deployment import runtime
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'fast_rcnn',
                                   'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py'))
    classes = ['RBC', 'WBC', 'Platelets']
    old = dict(config_meta(cfg, classes), test_scale='null', graph='features')
    old.pop('geometry')  # as before the geometry was recorded
    monkeypatch.setattr(runtime, 'read_meta', lambda path: dict(old))
    with pytest.raises(ValueError, match='Fast R-CNN export of an older '
                       'rcnn_plugin'):
        check_meta('old.onnx', cfg, classes)
