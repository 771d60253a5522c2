"""tools/model_converters/merge_lora.py: a plain model with equal outputs."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import save_checkpoint

from rcnn_plugin.engine import load_checkpoint_safely
from rcnn_plugin.models.peft import (
    LoRAConv2d,
    LoRALinear,
    lora_layers,
    save_adapter,
)

from conftest import run_tool

PEFT_TINY = """
_base_ = '{base}'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
model = dict(
    type='PEFTDetector',
    detector_type='FasterRCNN',
    lora=dict(rank=2, alpha=4,
              target_modules=r'backbone\\.layer[67]\\..*|neck\\..*'
              r'|rpn_head\\.rpn_conv|roi_head\\.bbox_head\\.shared_fcs\\.\\d+'),
    freeze=dict(frozen='.*', trainable='bbox_head.fc_cls'))
custom_hooks = [dict(type='AdapterCheckpointHook')]
"""


def _outputs(model, image):
    with torch.no_grad():
        feats = model.extract_feat(image)
        rpn = model.rpn_head(feats)
        rois = torch.tensor([[0, 4., 4., 60., 50.], [0, 30., 10., 90., 70.]])
        out = model.roi_head._bbox_forward(feats, rois)
    return list(feats) + list(rpn[0]) + [out['cls_score'], out['bbox_pred']]


@pytest.mark.slow
def test_merged_model_equals_unmerged(tmp_path, tiny_config):
    register_all_modules()
    path = tmp_path / 'tiny_peft_faster-rcnn.py'
    path.write_text(PEFT_TINY.format(base=tiny_config))
    cfg = Config.fromfile(str(path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    base_state = copy.deepcopy(model.state_dict())
    layers = lora_layers(model)
    # Conv layers (backbone, FPN, RPN; incl. depthwise = grouped) and linear.
    assert {type(m) for m in layers.values()} == {LoRAConv2d, LoRALinear}
    assert any(m.groups > 1 for m in layers.values()
               if isinstance(m, LoRAConv2d))
    with torch.no_grad():  # a strong update, as after training
        for layer in layers.values():
            layer.lora_B.normal_(std=0.1)
        model.roi_head.bbox_head.fc_cls.weight.normal_()
    model.eval()
    image = torch.rand(1, 3, 96, 128)
    expected = _outputs(model, image)
    adapter = str(tmp_path / 'adapter.pth')
    save_adapter(model, adapter)
    base_ckpt = str(tmp_path / 'base.pth')
    classes = dict(classes=('rbc', 'wbc', 'platelet'))
    save_checkpoint(dict(meta=dict(dataset_meta=classes),
                         state_dict=base_state), base_ckpt)

    out_dir = str(tmp_path / 'merged')
    log = run_tool(['tools/model_converters/merge_lora.py', str(path),
                    base_ckpt, '--adapter', adapter, '--out-dir', out_dir,
                    '--check-size', '96', '128'])
    assert 'max |merged - unmerged|' in log

    plain_cfg = Config.fromfile(osp.join(out_dir,
                                         'tiny_peft_faster-rcnn_merged.py'))
    assert plain_cfg.model.type == 'FasterRCNN'
    assert 'lora' not in plain_cfg.model and 'freeze' not in plain_cfg.model
    assert not plain_cfg.get('custom_hooks')
    plain = MODELS.build(plain_cfg.model)
    assert not lora_layers(plain)
    ckpt = load_checkpoint_safely(
        osp.join(out_dir, 'tiny_peft_faster-rcnn_merged.pth'))
    # the class names go with it (without them, inference said COCO's)
    assert ckpt['meta']['dataset_meta'] == classes
    plain.load_state_dict(ckpt['state_dict'], strict=True)
    plain.eval()
    got = _outputs(plain, image)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # ...and the update is live: the base model's outputs differ.
    model.load_state_dict(base_state)
    assert max(float((a - b).abs().max())
               for a, b in zip(_outputs(model, image), expected)) > 1e-3


def test_input_mistakes_are_sentences(tmp_path):
    # Only the merge itself was guarded: a config without PEFT or a
    # missing checkpoint gave a traceback.
    import importlib.util

    from conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'merge_lora_tool',
        osp.join(REPO, 'tools', 'model_converters', 'merge_lora.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    plain = osp.join(REPO, 'configs', 'bccd',
                     'faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
    with pytest.raises(SystemExit, match='merge_lora.py: error: '):
        tool.main([plain, 'x.pth', '--out-dir', str(tmp_path)])
    peft = osp.join(REPO, 'configs', 'bccd_peft',
                    'faster-rcnn_mobilenetv2_fpn-128_lora-r8_8e_bccd.py')
    with pytest.raises(SystemExit, match='merge_lora.py: error: .*missing'):
        tool.main([peft, str(tmp_path / 'missing.pth'), '--out-dir',
                   str(tmp_path)])
