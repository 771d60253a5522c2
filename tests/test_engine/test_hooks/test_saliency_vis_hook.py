"""SaliencyVisHook: saliency of fixed val images through the visualizer."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine import SaliencyVisHook


class FakeVisualizer:
    def __init__(self):
        self.images = []

    def add_image(self, name, image, step=0):
        self.images.append((name, image, step))


@pytest.fixture
def runner(tiny_config, tmp_path):
    from mmdet.apis import init_detector
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    cfg = Config.fromfile(tiny_config)
    model = init_detector(cfg, None, device='cpu')
    model.train()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    return SimpleNamespace(model=model, cfg=cfg, epoch=2, iter=20,
                           work_dir=str(tmp_path),
                           _train_loop=SimpleNamespace(val_interval=1),
                           log_processor=SimpleNamespace(by_epoch=True),
                           val_dataloader=SimpleNamespace(dataset=dataset),
                           visualizer=FakeVisualizer())


def test_logs_a_grid_every_n_epochs_and_leaves_training_alone(runner):
    hook = SaliencyVisHook(interval=2, num_images=2, score_thr=0.0,
                           max_dets=2, panel_height=64, method='gradcam')
    hook.before_run(runner)
    grads = [p.requires_grad for p in runner.model.parameters()]
    hook.after_val_epoch(runner)
    (name, image, step), = runner.visualizer.images
    assert name == 'saliency' and step == 2
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == \
        'uint8'
    # 2 images x 2 detections = 4 panels of 64 px (+ gaps), one row.
    assert image.shape[0] == 64 + 4
    assert runner.model.training
    assert [p.requires_grad for p in runner.model.parameters()] == grads
    assert all(p.grad is None for p in runner.model.parameters())
    runner.epoch = 3
    hook.after_val_epoch(runner)
    assert len(runner.visualizer.images) == 1


def test_counts_validations_and_logs_iterations_when_not_by_epoch(runner):
    # An iteration-based loop stays at epoch 0: the hook fired at every
    # validation and logged every grid at step 0 (overwriting each other).
    from mmengine.runner import IterBasedTrainLoop
    loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    loop.val_interval = 100
    runner._train_loop, runner.log_processor.by_epoch = loop, False
    runner.epoch = 0
    hook = SaliencyVisHook(interval=2, num_images=1, score_thr=0.0,
                           max_dets=1, panel_height=32)
    for it in (300, 400, 500, 600):  # (a run resumed at 200)
        runner.iter = it
        hook.after_val_epoch(runner)
    assert [step for *_, step in runner.visualizer.images] == [400, 600]


def test_counts_the_last_epochs_validation_too():
    # mmengine validates at the last epoch whatever the interval: with
    # val_interval 2 over 5 epochs at 2, 4 and 5. Counted as epoch // 2,
    # the third (epoch 5) was counted as the second.
    from rcnn_plugin.engine.hooks.saliency_vis_hook import (
        _validations_so_far,
    )
    assert [_validations_so_far(e, 2, 1, 5) for e in (2, 4, 5)] == [1, 2, 3]
    # val_begin: none before it, the first multiple from it on
    assert [_validations_so_far(e, 2, 3, 8) for e in (2, 4, 6, 8)] == [
        0, 1, 2, 3]
    assert _validations_so_far(7, 3, 1, None) == 2


def test_logs_at_the_nth_validation_at_the_last_epoch(runner):
    runner._train_loop = SimpleNamespace(val_interval=2, val_begin=1,
                                         max_epochs=5)
    hook = SaliencyVisHook(interval=3, num_images=1, score_thr=0.0,
                           max_dets=1, panel_height=32)
    for epoch in (2, 4, 5):
        runner.epoch = epoch
        hook.after_val_epoch(runner)
    assert [step for *_, step in runner.visualizer.images] == [5]


def test_runs_before_ema_puts_the_live_weights_back():
    from mmengine.hooks import EMAHook
    from mmengine.runner.priority import get_priority
    assert get_priority(SaliencyVisHook.priority) < 49  # mmdet's EMAHook
    assert get_priority(SaliencyVisHook.priority) < get_priority(
        EMAHook.priority)


def test_no_detection_is_logged_not_raised(runner):
    from conftest import logged_messages
    hook = SaliencyVisHook(num_images=1, score_thr=1.0)
    with logged_messages() as messages:
        hook.after_val_epoch(runner)
    assert runner.visualizer.images == []
    assert any('no detection with score >= 1.0' in m and 'nothing logged'
               in m for m in messages)


def test_bad_settings_fail_early(runner):
    with pytest.raises(ValueError, match='valid methods'):
        SaliencyVisHook(method='lime')
    with pytest.raises(ValueError, match='mask budget'):
        SaliencyVisHook(method='drise', masks=0)
    with pytest.raises(ValueError, match='>= 1'):
        SaliencyVisHook(interval=0)
    with pytest.raises(ValueError, match='neck.fpn_convs.0'):
        SaliencyVisHook(layer='neck.x').before_run(runner)
