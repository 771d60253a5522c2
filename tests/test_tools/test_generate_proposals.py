"""tools/generate_proposals.py: RPN test config, split loaders, RPN-only."""
import importlib.util
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from conftest import REPO

FAST = osp.join(REPO, 'configs', 'fast_rcnn',
                'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
FASTER = osp.join(REPO, 'configs', 'bccd',
                  'faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py')


def _tool():
    path = osp.join(REPO, 'tools', 'generate_proposals.py')
    spec = importlib.util.spec_from_file_location('generate_proposals', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rpn_test_cfg():
    tool = _tool()
    cfg = Config.fromfile(FASTER)
    assert tool.rpn_test_cfg(cfg.model) is cfg.model.test_cfg.rpn
    with pytest.raises(ValueError, match="'FastRCNN' has no RPN"):
        tool.rpn_test_cfg(Config.fromfile(FAST).model)


def test_bad_inputs_are_sentences(monkeypatch, tmp_path):
    # They were tracebacks: a model without RPN, a mistyped checkpoint.
    tool = _tool()
    for config, message in ((FAST, "'FastRCNN' has no RPN"),
                            (FASTER, 'checkpoint .*nope.pth not found')):
        monkeypatch.setattr('sys.argv', [
            'generate_proposals.py', config, str(tmp_path / 'nope.pth'),
            '--out-dir', str(tmp_path)])
        with pytest.raises(SystemExit,
                           match=f'generate_proposals.py: error: .*{message}'):
            tool.main()


def test_split_loader_covers_every_image_without_proposals():
    cfg = Config.fromfile(FAST)
    loader = _tool().split_dataloader_cfg(cfg, 'train')
    ds = loader.dataset
    assert ds.test_mode and ds.filter_cfg is None
    assert ds.proposal_file is None
    assert ds.ann_file == 'ImageSets/Main/train.txt'
    types = [t['type'] for t in ds.pipeline]
    assert 'LoadProposals' not in types and 'RandomFlip' not in types
    assert loader.sampler['type'] == 'DefaultSampler'
    assert loader.sampler['shuffle'] is False
    # The config itself is left as it was.
    assert cfg.train_dataloader.dataset.proposal_file.endswith('train.pkl')


def test_split_loader_unwraps_dataset_wrappers():
    """Few-shot base training wraps BCCD in ClassSubsetDataset (RBC)."""
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'bccd_fewshot',
        'faster-rcnn_mobilenetv2_fpn-128_base-training_bccd.py'))
    assert cfg.val_dataloader.dataset.type == 'ClassSubsetDataset'
    ds = _tool().split_dataloader_cfg(cfg, 'val').dataset
    assert ds.type == 'BCCDDataset' and ds.test_mode
    assert ds.ann_file == 'ImageSets/Main/val.txt'
    assert [t['type'] for t in ds.pipeline][0] == 'LoadImageFromFile'


@pytest.mark.slow
def test_rpn_only_model_writes_original_pixels(tiny_config, tmp_path):
    register_all_modules()
    import rcnn_plugin  # noqa: F401
    cfg = Config.fromfile(tiny_config)
    model_cfg = cfg.model
    model_cfg.type = 'RPN'
    model_cfg.pop('roi_head')
    model_cfg.train_cfg = dict(rpn=model_cfg.train_cfg.rpn)
    model_cfg.test_cfg = dict(rpn=model_cfg.test_cfg.rpn)
    tool = _tool()
    tool.rpn_test_cfg(model_cfg).max_per_img = 7
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    out = str(tmp_path / 'val.pkl')
    count = tool.dump_split(model, tool.split_dataloader_cfg(cfg, 'val'),
                            out, num_proposals=5)
    assert count == 4
    with open(out, 'rb') as f:
        props = pickle.load(f)
    assert sorted(props) == [f'val/{i:05d}.jpg' for i in range(1, 5)]
    for entry in props.values():
        boxes = np.asarray(entry.bboxes)
        assert 0 < len(boxes) <= 5 and boxes.shape[1] == 4
        # The pipeline resizes 96 -> 320; proposals come back to 96.
        assert boxes.min() >= 0 and boxes.max() <= 96
