"""ResumableEarlyStoppingHook, and --resume keeping save_best, early
stopping and results.csv (configs/_base_/hooks/run-folder.py)."""
import glob
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmdet.registry import METRICS
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine import ResumableEarlyStoppingHook
from rcnn_plugin.engine.hooks.epoch_results_hook import read_results
from rcnn_plugin.utils import apply_overlays

from conftest import REPO

OVERLAY = osp.join(REPO, 'configs', '_base_', 'hooks', 'run-folder.py')


class FakeRunner(SimpleNamespace):
    """What the hook reads of a runner; records save_checkpoint calls."""

    def save_checkpoint(self, *args, **kwargs):
        self.saved.append((args, kwargs))


def _runner(name, epoch=0, it=0, hooks=()):
    hub = MessageHub.get_instance(name)
    return FakeRunner(epoch=epoch, iter=it, message_hub=hub,
                      hooks=list(hooks), saved=[],
                      train_loop=SimpleNamespace(stop_training=False),
                      logger=SimpleNamespace(info=lambda msg: None))


def test_state_round_trip_through_a_checkpoint():
    hook = ResumableEarlyStoppingHook('coco/bbox_mAP', min_delta=0.01,
                                      patience=3)
    runner = _runner('es_round_trip')
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.5})
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.505})  # < min_delta
    assert (hook.best_score, hook.wait_count) == (0.5, 1)
    ckpt = dict(meta=dict(epoch=2, iter=20))
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['early_stopping'] == dict(
        monitor='coco/bbox_mAP', rule='greater', best_score=0.5,
        wait_count=1, stopped=False, stop_reason=None)
    resumed = ResumableEarlyStoppingHook('coco/bbox_mAP', min_delta=0.01,
                                         patience=3)
    resumed.after_load_checkpoint(runner, ckpt)
    resumed.before_train(_runner('es_round_trip', epoch=2, it=20))
    assert (resumed.best_score, resumed.wait_count) == (0.5, 1)
    # load_from (a new training at epoch 0) starts fresh.
    fresh = ResumableEarlyStoppingHook('coco/bbox_mAP')
    fresh.after_load_checkpoint(runner, ckpt)
    fresh.before_train(_runner('es_round_trip'))
    assert (fresh.best_score, fresh.wait_count) == (-math.inf, 0)


def test_a_run_it_stopped_is_not_trained_further_after_a_resume():
    # mmengine's loop reads stop_training only: a resumed run that had
    # stopped early trained on (a kill in finetune's test step, a requeue)
    hook = ResumableEarlyStoppingHook('coco/bbox_mAP', patience=1)
    runner = _runner('es_stopped')
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.5})
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.4})
    assert runner.train_loop.stop_training and hook.stopped
    assert hook.stop_reason == 'patience'
    ckpt = dict(meta=dict(epoch=2, iter=20))
    hook.before_save_checkpoint(runner, ckpt)
    resumed = ResumableEarlyStoppingHook('coco/bbox_mAP', patience=1)
    resumed.after_load_checkpoint(runner, ckpt)
    again = _runner('es_stopped', epoch=2, it=20)
    resumed.before_train(again)
    assert again.train_loop.stop_training
    # resumed with a larger patience: it goes on
    longer = ResumableEarlyStoppingHook('coco/bbox_mAP', patience=3)
    longer.after_load_checkpoint(runner, ckpt)
    goes_on = _runner('es_stopped', epoch=2, it=20)
    longer.before_train(goes_on)
    assert not goes_on.train_loop.stop_training
    # another hook's stop (Optuna's pruning) is not recorded as its own
    other = ResumableEarlyStoppingHook('coco/bbox_mAP', patience=5)
    pruned = _runner('es_pruned')
    pruned.train_loop.stop_training = True
    other.after_val_epoch(pruned, {'coco/bbox_mAP': 0.5})
    assert not other.stopped


def _stopped_state(hook, scores):
    runner = _runner('es_reason')
    for score in scores:
        hook.after_val_epoch(runner, {'coco/bbox_mAP': score})
    assert runner.train_loop.stop_training and hook.stopped
    ckpt = dict(meta=dict(epoch=2, iter=20))
    hook.before_save_checkpoint(runner, ckpt)
    return ckpt


def _resumed(ckpt, **kwargs):
    hook = ResumableEarlyStoppingHook('coco/bbox_mAP', **kwargs)
    hook.after_load_checkpoint(None, ckpt)
    runner = _runner('es_reason', epoch=2, it=20)
    hook.before_train(runner)
    return runner.train_loop.stop_training


def test_a_stop_on_a_non_finite_metric_or_threshold_stays_stopped():
    # mmengine's check_finite stops on a NaN metric with wait_count 0: the
    # resume looked at the patience only, and trained on
    ckpt = _stopped_state(ResumableEarlyStoppingHook(
        'coco/bbox_mAP', patience=3), [0.5, math.nan])
    assert ckpt['early_stopping']['stop_reason'] == 'not_finite'
    assert ckpt['early_stopping']['wait_count'] == 0
    assert _resumed(ckpt, patience=3)
    # a threshold stop stays stopped, even without the threshold now
    ckpt = _stopped_state(ResumableEarlyStoppingHook(
        'coco/bbox_mAP', patience=3, stopping_threshold=0.6), [0.5, 0.7])
    assert ckpt['early_stopping']['stop_reason'] == 'threshold'
    assert _resumed(ckpt, patience=3)
    # only a patience stop is judged again against the patience given now
    ckpt = _stopped_state(ResumableEarlyStoppingHook(
        'coco/bbox_mAP', patience=1), [0.5, 0.4])
    assert ckpt['early_stopping']['stop_reason'] == 'patience'
    assert _resumed(ckpt, patience=1) and not _resumed(ckpt, patience=2)
    # a checkpoint saved before the reason was kept: as before
    del ckpt['early_stopping']['stop_reason']
    assert _resumed(ckpt, patience=1) and not _resumed(ckpt, patience=2)
    assert _resumed(ckpt, patience=2, stopping_threshold=0.9)


def test_other_monitor_or_no_state_start_fresh():
    ckpt = dict(early_stopping=dict(monitor='coco/bbox_mAP', rule='greater',
                                    best_score=0.5, wait_count=2))
    other = ResumableEarlyStoppingHook('val/loss')
    other.after_load_checkpoint(None, ckpt)
    other.before_train(_runner('es_other', epoch=3, it=30))
    assert (other.best_score, other.wait_count) == (math.inf, 0)
    bare = ResumableEarlyStoppingHook('val/loss')
    bare.after_load_checkpoint(None, {})  # saved by mmengine's hook
    bare.before_train(_runner('es_other', epoch=3, it=30))
    assert bare.wait_count == 0
    auto = ResumableEarlyStoppingHook('auto')
    auto.after_load_checkpoint(None, ckpt)
    auto.before_train(_runner('es_other', epoch=3, it=30))
    assert (auto.monitor, auto.best_score, auto.wait_count) == (
        'coco/bbox_mAP', 0.5, 2)


def test_auto_monitor_follows_the_first_metric():
    hook = ResumableEarlyStoppingHook('auto', min_delta=0.1, patience=1)
    runner = _runner('es_auto')
    hook.after_val_epoch(runner, {'val/loss': 2.0, 'coco/bbox_mAP': 0.1})
    assert (hook.monitor, hook.rule, hook.min_delta) == ('val/loss', 'less',
                                                         -0.1)
    hook.after_val_epoch(runner, {'val/loss': 1.95})  # not 0.1 better
    assert runner.train_loop.stop_training
    with pytest.raises(ValueError, match="rule='greater' or 'less'"):
        ResumableEarlyStoppingHook('auto').after_val_epoch(
            runner, {'fake/score': 1.0})
    given = ResumableEarlyStoppingHook('auto', rule='greater')
    given.after_val_epoch(runner, {'fake/score': 1.0})
    assert given.best_score == 1.0
    empty = ResumableEarlyStoppingHook('auto')
    empty.after_val_epoch(runner, {})  # nothing evaluated: nothing to do
    assert empty.monitor == 'auto' and empty.skipped_evaluations == 1


def test_a_monitor_no_evaluation_gives_is_an_error_not_a_silent_skip():
    runner = _runner('es_missing')
    hook = ResumableEarlyStoppingHook('coco/bbox_mAP50', patience=1)
    with pytest.raises(ValueError, match=r"monitor 'coco/bbox_mAP50' is not "
                       r'among .*\(coco/bbox_mAP, coco/bbox_mAP_50\)'):
        hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.1,
                                      'coco/bbox_mAP_50': 0.2})
    lax = ResumableEarlyStoppingHook('coco/bbox_mAP50', strict=False,
                                     patience=1)
    for _ in range(3):
        lax.after_val_epoch(runner, {'coco/bbox_mAP': 0.1})
    assert lax.skipped_evaluations == 3
    assert not runner.train_loop.stop_training


def test_checkpoint_of_the_epoch_is_saved_again_when_the_state_changed():
    ckpt_hook = CheckpointHook(interval=1)
    hook = ResumableEarlyStoppingHook('coco/bbox_mAP', patience=5)
    runner = _runner('es_resave', epoch=1, it=10, hooks=[ckpt_hook])
    runner.message_hub.update_info('last_ckpt', '/work/epoch_1.pth')
    # CheckpointHook.after_train_epoch saves epoch 1 before validation 1.
    hook.before_save_checkpoint(runner, dict(meta=dict(epoch=1, iter=10)))
    hook.after_val(runner)
    assert runner.saved == []  # unchanged
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.3})
    hook.after_val(runner)
    (args, kwargs), = runner.saved
    assert args[:2] == ('/work', 'epoch_1.pth')
    assert kwargs['meta'] == dict(epoch=1, iter=10)
    # A validation in a later epoch without a new checkpoint: no save.
    runner.saved, runner.epoch, runner.iter = [], 2, 20
    hook.before_save_checkpoint(runner, dict(meta=dict(epoch=1, iter=10)))
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.5})
    hook.after_val(runner)
    assert runner.saved == []
    ResumableEarlyStoppingHook('x', rule='less').after_val(runner)  # nothing


def test_a_new_best_checkpoint_does_not_stand_for_the_epochs():
    # save_best writes best_*_epoch_N.pth during validation N, after this
    # hook's update: that save overwrote the record of epoch_N.pth, so the
    # epoch's checkpoint kept the state from before the improvement
    ckpt_hook = CheckpointHook(interval=1, save_best='coco/bbox_mAP')
    hook = ResumableEarlyStoppingHook('coco/bbox_mAP', patience=5)
    runner = _runner('es_best', epoch=1, it=10, hooks=[ckpt_hook])
    runner.message_hub.update_info('last_ckpt', '/work/epoch_1.pth')
    hook.before_save_checkpoint(runner, dict(meta=dict(epoch=1, iter=10)))
    hook.before_val(runner)
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.3})
    best = dict(meta=dict(epoch=1, iter=10))
    hook.before_save_checkpoint(runner, best)  # best_coco_bbox_mAP_epoch_1
    assert best['early_stopping']['best_score'] == 0.3
    hook.after_val(runner)
    (args, kwargs), = runner.saved
    assert args[:2] == ('/work', 'epoch_1.pth')


@METRICS.register_module(force=True)
class ScriptedMAP(BaseMetric):
    """Returns the next value of ``SCORES`` as ``fake/mAP``."""
    default_prefix = 'fake'
    SCORES = []

    def process(self, data_batch, data_samples):
        self.results.extend(range(len(data_samples)))

    def compute_metrics(self, results):
        return dict(mAP=float(self.SCORES.pop(0)))


def _train(tiny_config, work_dir, max_epochs, name, resume=False):
    cfg = apply_overlays(Config.fromfile(tiny_config), [OVERLAY])
    cfg.val_evaluator = dict(type='ScriptedMAP')
    cfg.train_cfg.max_epochs = max_epochs
    for hook in cfg.custom_hooks:
        if hook.type == 'ResumableEarlyStoppingHook':
            hook.patience = 2
    # One training and one validation iteration per epoch.
    cfg.train_dataloader.dataset.indices = 4
    cfg.val_dataloader.dataset.indices = 2
    cfg.work_dir = work_dir
    cfg.resume = resume
    cfg.visualizer.name = name
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


class Counted(Dataset):
    """Four samples; counts the ones loaded."""
    loaded = 0

    def __len__(self):
        return 4

    def __getitem__(self, i):
        Counted.loaded += 1
        return dict(inputs=torch.full((2, ), float(i)))


class ToyModel(BaseModel):
    """A linear layer with a loss and empty predictions."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=out.abs().mean())
        return [BaseDataElement() for _ in inputs]


def _toy(work_dir, name, train_cfg, checkpoint, patience=5, resume=False):
    loader = dict(dataset=Counted(), batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=loader, val_dataloader=loader,
        val_evaluator=dict(type='ScriptedMAP'), val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=train_cfg, resume=resume,
        custom_hooks=[dict(type='ResumableEarlyStoppingHook',
                           monitor='fake/mAP', patience=patience)],
        default_hooks=dict(checkpoint=checkpoint),
        visualizer=dict(type='Visualizer', name=f'vis_{name}'),
        default_scope='mmdet', log_level='WARNING')


def test_a_stopped_iteration_based_run_loads_no_data_on_resume(tmp_path):
    # IterBasedTrainLoop.run loads runner.iter batches to skip them, then
    # reads stop_training: the resumed stopped run loaded all it trained
    train_cfg = dict(by_epoch=False, max_iters=8, val_interval=2)
    ckpt = dict(type='CheckpointHook', by_epoch=False, interval=2)
    ScriptedMAP.SCORES[:] = [0.5, 0.1]  # iteration 4: stop (patience 1)
    _toy(tmp_path, f'es_iter_{tmp_path.name}', train_cfg, ckpt,
         patience=1).train()
    assert ScriptedMAP.SCORES == []
    Counted.loaded = 0
    runner = _toy(tmp_path, f'es_iter2_{tmp_path.name}', train_cfg, ckpt,
                  patience=1, resume=True)
    runner.train()
    assert runner.train_loop.stop_training and runner.iter == 4
    assert Counted.loaded == 0  # before: 8 (4 batches of 2)
    assert sorted(osp.basename(p) for p in glob.glob(
        osp.join(tmp_path, 'iter_*.pth'))) == ['iter_2.pth', 'iter_4.pth']


def test_a_new_best_saves_the_epochs_checkpoint_once_more(tmp_path):
    # Epoch 1 improves: CheckpointHook saves epoch_1.pth, the best file
    # and epoch_1.pth again (with the new state); this hook added a third
    # save of epoch_1.pth. Epoch 2 does not improve: one extra save.
    names = []
    ScriptedMAP.SCORES[:] = [0.5, 0.3]
    runner = _toy(tmp_path, f'es_saves_{tmp_path.name}',
                  dict(by_epoch=True, max_epochs=2, val_interval=1),
                  dict(type='CheckpointHook', interval=1,
                       save_best='fake/mAP'))
    save = runner.save_checkpoint

    def counted(out_dir, filename, *args, **kwargs):
        names.append(filename)
        save(out_dir, filename, *args, **kwargs)

    runner.save_checkpoint = counted
    runner.train()
    assert names == ['epoch_1.pth', 'best_fake_mAP_epoch_1.pth',
                     'epoch_1.pth', 'epoch_2.pth', 'epoch_2.pth']
    for epoch, best, wait in ((1, 0.5, 0), (2, 0.5, 1)):
        state = torch.load(osp.join(tmp_path, f'epoch_{epoch}.pth'),
                           weights_only=False)['early_stopping']
        assert (state['best_score'], state['wait_count']) == (best, wait)


@pytest.mark.slow
def test_resume_keeps_best_checkpoint_early_stopping_and_results(
        tiny_config, tmp_path):
    work = str(tmp_path / 'work')
    ScriptedMAP.SCORES[:] = [0.5, 0.4]
    first = _train(tiny_config, work, 2, f'vis_{tmp_path.name}_1')
    assert first.epoch == 2
    early = next(h for h in first.hooks
                 if isinstance(h, ResumableEarlyStoppingHook))
    assert (early.monitor, early.best_score, early.wait_count) == (
        'fake/mAP', 0.5, 1)
    # Resume for a third epoch (of at most 4): 0.3 is the second
    # evaluation without improvement, so patience 2 stops here, and it
    # is no new best.
    ScriptedMAP.SCORES[:] = [0.3, 0.2]
    second = _train(tiny_config, work, 4, f'vis_{tmp_path.name}_2',
                    resume=True)
    assert second.epoch == 3 and ScriptedMAP.SCORES == [0.2]
    early = next(h for h in second.hooks
                 if isinstance(h, ResumableEarlyStoppingHook))
    assert (early.monitor, early.best_score, early.wait_count) == (
        'fake/mAP', 0.5, 2)
    hub = second.message_hub
    best = osp.join(work, 'best_fake_mAP_epoch_1.pth')
    assert hub.get_info('best_score') == 0.5
    assert hub.get_info('best_ckpt') == best
    assert glob.glob(osp.join(work, 'best_*.pth')) == [best]
    assert osp.realpath(osp.join(work, 'best.pth')) == osp.realpath(best)
    assert osp.realpath(osp.join(work, 'last.pth')) == osp.realpath(
        osp.join(work, 'epoch_3.pth'))
    rows = read_results(osp.join(work, 'results.csv'))
    assert [r['epoch'] for r in rows] == [1, 2, 3]
    assert [r['fake/mAP'] for r in rows] == [0.5, 0.4, 0.3]
    assert all(r['val/loss'] > 0 for r in rows)
