"""tools/model_converters/remap_classes.py on a small Faster R-CNN."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint

from conftest import REPO, run_tool, shrink_model

TOOL = osp.join(REPO, 'tools', 'model_converters', 'remap_classes.py')
CONFIG = osp.join(REPO, 'configs', 'demo',
                  'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
SRC = ('RBC', 'WBC', 'Platelets')
DST = ('WBC', 'blood_cell', 'Parasite', 'Platelets')


def _tool():
    spec = importlib.util.spec_from_file_location('remap_classes', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(num_classes):
    register_all_modules()
    cfg = Config.fromfile(CONFIG).model
    cfg.roi_head.bbox_head.num_classes = num_classes
    torch.manual_seed(num_classes)
    model = MODELS.build(shrink_model(cfg))
    model.init_weights()
    return model.eval()


@pytest.fixture(scope='module')
def source_ckpt(tmp_path_factory):
    model = _model(len(SRC))
    path = tmp_path_factory.mktemp('remap') / 'src.pth'
    torch.save({'meta': {'dataset_meta': {'classes': SRC,
                                          'palette': [(0, 0, 0)] * 3}},
                'state_dict': model.state_dict()}, path)
    return str(path), model


def _head_outputs(model, rois):
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 64, 64) + 0.5)
        roi_feats = model.roi_head.bbox_roi_extractor(
            feats[:model.roi_head.bbox_roi_extractor.num_inputs], rois)
        cls, reg = model.roi_head.bbox_head(roi_feats)
    return cls, reg.view(len(rois), -1, 4)


@pytest.mark.slow
def test_remapped_checkpoint_keeps_mapped_classes(source_ckpt, tmp_path):
    src_path, src_model = source_ckpt
    out = str(tmp_path / 'dst.pth')
    log = run_tool([TOOL, src_path, out, '--classes', *DST,
                    '--map', 'RBC,WBC:blood_cell'])
    assert 'Parasite <- new (mmdet init)' in log
    dst_model = _model(len(DST))
    # strict=True raises on any missing key or size mismatch.
    ckpt = load_checkpoint(dst_model, out, map_location='cpu', strict=True)
    assert ckpt['meta']['dataset_meta']['classes'] == DST
    assert 'palette' not in ckpt['meta']['dataset_meta']
    with pytest.raises(RuntimeError, match='size mismatch'):
        load_checkpoint(_model(len(DST)), src_path, strict=True)
    rois = torch.tensor([[0, 0, 0, 30, 30], [0, 10, 5, 60, 40.],
                         [0, 2, 2, 9, 9]])
    cls_s, reg_s = _head_outputs(src_model, rois)
    cls_d, reg_d = _head_outputs(dst_model.eval(), rois)
    torch.testing.assert_close(cls_d[:, 0], cls_s[:, 1])  # WBC
    torch.testing.assert_close(cls_d[:, 3], cls_s[:, 2])  # Platelets
    torch.testing.assert_close(cls_d[:, 4], cls_s[:, 3])  # background
    torch.testing.assert_close(cls_d[:, 1], cls_s[:, :2].mean(1))
    torch.testing.assert_close(reg_d[:, 0], reg_s[:, 1])
    torch.testing.assert_close(reg_d[:, 3], reg_s[:, 2])
    torch.testing.assert_close(reg_d[:, 1], reg_s[:, :2].mean(1))


@pytest.mark.parametrize('extra,match', [
    (['--map', 'Neutrophil:WBC'], r"source classes \['Neutrophil'\]"),
    (['--map', 'RBC:Erythrocyte'], r"target classes \['Erythrocyte'\]"),
    (['--map', 'RBC'], 'expected SRC'),
])
def test_bad_mapping_names_the_class(source_ckpt, tmp_path, extra, match):
    with pytest.raises(ValueError, match=match):
        _tool().main([source_ckpt[0], str(tmp_path / 'x.pth'),
                      '--classes', *DST, *extra])


def test_missing_classes_in_meta_asks_for_flag(source_ckpt, tmp_path):
    path = tmp_path / 'bare.pth'
    torch.save(source_ckpt[1].state_dict(), path)
    with pytest.raises(ValueError, match='pass --src-classes'):
        _tool().main([str(path), str(tmp_path / 'x.pth'), '--classes', 'a'])
    _tool().main([str(path), str(tmp_path / 'x.pth'), '--classes', 'RBC',
                  '--src-classes', *SRC])


def test_unsupported_and_corrupt_files(source_ckpt, tmp_path):
    retina = tmp_path / 'retina.pth'
    torch.save({'bbox_head.retina_cls.weight': torch.zeros(9, 4)}, retina)
    with pytest.raises(ValueError, match='Supported: Faster R-CNN'):
        _tool().main([str(retina), str(tmp_path / 'x.pth'), '--classes',
                      'a', '--src-classes', 'b'])
    data = open(source_ckpt[0], 'rb').read()
    broken = tmp_path / 'truncated.pth'
    broken.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='truncated.pth is not a readable'):
        _tool().main([str(broken), str(tmp_path / 'x.pth'), '--classes', 'a'])
