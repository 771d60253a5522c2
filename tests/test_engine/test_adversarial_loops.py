"""Adversarial training loops: the overlay trains, checkpoints stay plain."""
import os.path as osp

import pytest
import torch
from mmdet.registry import LOOPS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine import (
    AdversarialEpochBasedTrainLoop,
    AdversarialIterBasedTrainLoop,
    load_checkpoint_safely,
)
from rcnn_plugin.utils import apply_overlays

from conftest import REPO, run_tool

OVERLAY = osp.join(REPO, 'configs', '_base_', 'robustness',
                   'adversarial-training.py')
BCCD_ADV = osp.join(REPO, 'configs', 'bccd',
                    'faster-rcnn_mobilenetv2_fpn-128_adv-8e_bccd.py')


def test_configs_select_the_adversarial_loop():
    register_all_modules()
    cfg = Config.fromfile(BCCD_ADV)
    assert LOOPS.get(cfg.train_cfg.type) is AdversarialEpochBasedTrainLoop
    assert cfg.train_cfg.max_epochs == 8  # the rest of the loop inherited
    assert cfg.model.type == 'FasterRCNN'  # the model is the plain one
    assert LOOPS.get('AdversarialIterBasedTrainLoop') is \
        AdversarialIterBasedTrainLoop


def test_overlay_on_an_iteration_based_config_names_the_iter_loop():
    # The overlay merged onto IterBasedTrainLoop keeps max_iters and has
    # no max_epochs: a sentence, not a missing-argument TypeError.
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop',
                                     max_iters=100, val_interval=50)))
    merged = apply_overlays(cfg, [OVERLAY])
    train_cfg = dict(merged.train_cfg)
    assert LOOPS.get(train_cfg.pop('type')) is AdversarialEpochBasedTrainLoop
    with pytest.raises(ValueError, match="AdversarialIterBasedTrainLoop'"):
        AdversarialEpochBasedTrainLoop(runner=None, dataloader=None,
                                       **train_cfg)


def test_iteration_loop_on_an_epoch_config_names_the_epoch_loop():
    # The mirror mistake was a builder TypeError (max_iters missing,
    # max_epochs unexpected).
    from rcnn_plugin.engine.runner.adversarial_loops import (
        AdversarialIterBasedTrainLoop,
    )
    with pytest.raises(ValueError, match="AdversarialEpochBasedTrainLoop'"):
        AdversarialIterBasedTrainLoop(runner=None, dataloader=None,
                                      max_epochs=8, val_interval=1)


@pytest.mark.slow
def test_overlay_trains_and_checkpoint_loads_into_plain_config(
        tiny_config, tmp_path):
    work_dir = str(tmp_path / 'work')
    out = run_tool([
        'tools/train.py', tiny_config, '--work-dir', work_dir, '--overlay',
        OVERLAY, '--cfg-options', 'train_cfg.val_interval=9',
        'train_cfg.adversarial.clean_ratio=0.5'
    ])
    assert "AdversarialTraining(method='fgsm-rs', eps=8.0" in out
    assert 'Epoch(train) [1][2/2]' in out
    ckpt = load_checkpoint_safely(osp.join(work_dir, 'epoch_1.pth'))

    # The plain config (no overlay) builds the same model: every key of
    # the checkpoint loads, strictly, and nothing is left out.
    register_all_modules()
    plain = MODELS.build(Config.fromfile(tiny_config).model)
    assert set(ckpt['state_dict']) == set(plain.state_dict())
    plain.load_state_dict(ckpt['state_dict'], strict=True)
    cfg = apply_overlays(Config.fromfile(tiny_config), [OVERLAY])
    assert cfg.model == Config.fromfile(tiny_config).model
    assert torch.equal(plain.state_dict()['rpn_head.rpn_cls.weight'],
                       ckpt['state_dict']['rpn_head.rpn_cls.weight'])
