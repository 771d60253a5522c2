"""TrainingHealthHook: NaN/Inf stop or skip in a real mmengine Runner; the
divergence, clipping, collapse and empty-validation checks on fed
numbers, among them the demo's diverging loss curve."""
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement, InstanceData
from torch.utils.data import Dataset

from rcnn_plugin.engine.hooks import TrainingHealthError, TrainingHealthHook
from rcnn_plugin.engine.hooks.health_file import read_health
from rcnn_plugin.engine.hooks.health_monitors import (
    DivergenceMonitor,
    classifier_collapse,
    img_paths,
)

INF = float('inf')


class ToyData(Dataset):
    """Samples ``{inputs, data_samples}`` with an ``img_path`` each."""

    def __init__(self, n=8, with_samples=True):
        self.n, self.with_samples = n, with_samples

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        item = dict(inputs=torch.full((2, ), float(i + 1)))
        if self.with_samples:
            item['data_samples'] = BaseDataElement(
                metainfo=dict(img_path=f'img_{i}.png'))
        return item


class ToyDetector(BaseModel):
    """A linear layer whose terms look like a detector's; ``loss_bbox`` is
    NaN on the (1-based) calls listed in ``nan_at``."""

    def __init__(self, nan_at=()):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.nan_at, self.calls = set(nan_at), 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs) / 8)
        if mode != 'loss':
            return out
        self.calls += 1
        loss_bbox = (out - 1).abs().mean()
        if self.calls in self.nan_at:
            loss_bbox = loss_bbox * float('nan')
        return dict(loss_cls=(out ** 2).mean() * 0.1, loss_bbox=loss_bbox,
                    acc=torch.tensor(90.0))


class Snapshots(Hook):
    """Weights after each iteration (runs after TrainingHealthHook)."""
    priority = 'LOWEST'

    def __init__(self):
        self.weights = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.weights.append(runner.model.linear.weight.detach().clone())


def _runner(tmp_path, model, hook, clip=None, iters=None, epochs=2,
            with_samples=True, extra_hooks=(), accumulate=1):
    train_cfg = (dict(by_epoch=False, max_iters=iters) if iters else
                 dict(by_epoch=True, max_epochs=epochs))
    return Runner(
        model=model, work_dir=str(tmp_path / 'work'),
        experiment_name=f'health_{tmp_path.name}',
        train_dataloader=dict(
            dataset=ToyData(with_samples=with_samples), batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9),
                           clip_grad=clip, accumulative_counts=accumulate),
        train_cfg=train_cfg, custom_hooks=[hook, *extra_hooks],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=100)),
        visualizer=dict(type='Visualizer', name=f'vis_{tmp_path.name}'),
        default_scope='mmdet', log_level='WARNING')


def _health(runner):
    return json.load(open(osp.join(runner.work_dir, 'health.json')))


def test_registered_and_bad_arguments():
    assert isinstance(HOOKS.build(dict(type='TrainingHealthHook')),
                      TrainingHealthHook)
    for kwargs in (dict(nonfinite='ignore'), dict(divergence='skip'),
                   dict(collapse='skip'), dict(loss_ratio=1.0),
                   dict(clip_fraction=0), dict(ref_lr=0.02)):
        with pytest.raises(ValueError):
            TrainingHealthHook(**kwargs)


def test_nan_loss_stops_with_term_iteration_images_and_replay(tmp_path):
    hook = TrainingHealthHook()
    runner = _runner(tmp_path, ToyDetector(nan_at={3}), hook)
    with pytest.raises(TrainingHealthError) as err:
        runner.train()
    msg = str(err.value)
    assert 'iteration 3' in msg and 'loss_bbox = nan' in msg
    assert 'img_4.png, img_5.png' in msg  # the third batch, unshuffled
    assert 'linear.weight' in msg  # NaN loss, NaN gradients
    replay = osp.join(runner.work_dir, 'health', 'nonfinite_iter3.pth')
    assert replay in msg and 'weights_only=False' in msg
    batch = torch.load(replay, weights_only=False)
    assert [s.img_path for s in batch['data_samples']] == ['img_4.png',
                                                           'img_5.png']
    assert torch.equal(torch.stack(batch['inputs'])[:, 0],
                       torch.tensor([5., 6.]))
    # The bad update was not applied: the saved weights are those after
    # iteration 2, and they reproduce the NaN with the replayed batch.
    state = torch.load(replay.replace('.pth', '_state.pth'),
                       weights_only=False)
    weight = state['state_dict']['linear.weight']
    assert torch.isfinite(weight).all()
    assert torch.equal(weight, runner.model.linear.weight.detach())
    health = _health(runner)
    assert health['status'] == 'stopped'
    (finding, ) = health['findings']
    assert finding['kind'] == 'nonfinite' and finding['iteration'] == 3
    assert finding['img_paths'] == ['img_4.png', 'img_5.png']
    assert hook.findings == [finding]


@pytest.mark.parametrize('clip', [None, dict(max_norm=1.0)])
def test_inf_gradient_stops_with_and_without_clip_grad(tmp_path, clip):
    model = ToyDetector()
    model.linear.weight.register_hook(
        lambda g: g * INF if model.calls == 2 else g)
    runner = _runner(tmp_path, model, TrainingHealthHook(), clip=clip)
    with pytest.raises(TrainingHealthError, match='iteration 2') as err:
        runner.train()
    msg = str(err.value)
    assert 'non-finite gradients in 1 parameters (linear.weight)' in msg
    assert 'loss_bbox = ' not in msg  # the losses were finite
    assert torch.isfinite(model.linear.weight).all()


def test_skip_mode_skips_then_stops(tmp_path):
    snaps = Snapshots()
    hook = TrainingHealthHook(nonfinite='skip', max_skips=2)
    runner = _runner(tmp_path, ToyDetector(nan_at={2, 3, 5}), hook,
                     extra_hooks=[snaps])
    with pytest.raises(TrainingHealthError, match='iteration 5') as err:
        runner.train()
    assert '2 non-finite steps were skipped before' in str(err.value)
    w = snaps.weights  # after iterations 1..4
    assert len(w) == 4
    assert torch.equal(w[0], w[1]) and torch.equal(w[1], w[2])
    assert not torch.equal(w[2], w[3])  # iteration 4 was healthy
    assert [f['action'] for f in hook.findings] == ['skip', 'skip', 'stop']
    assert _health(runner)['skipped_steps'] == 2


def test_skip_counts_only_real_steps_under_gradient_accumulation(tmp_path):
    # accumulative_counts=2: iteration 3 only adds its NaN gradients, the
    # step of iteration 4 applies them. One bad batch is one skip (it was
    # counted at both), and no update is said to be applied at iteration 3.
    snaps = Snapshots()
    hook = TrainingHealthHook(nonfinite='skip', max_skips=1)
    runner = _runner(tmp_path, ToyDetector(nan_at={3}), hook,
                     extra_hooks=[snaps], accumulate=2)
    runner.train()  # before: TrainingHealthError at iteration 4
    assert [(f['iteration'], f['action']) for f in hook.findings] == [
        (3, 'warn'), (4, 'skip')]
    first = hook.findings[0]['message']
    assert 'No optimizer step ran at this iteration' in first
    assert 'the update was applied' not in first
    assert 'Non-finite step 1 of max_skips=1' in hook.findings[1]['message']
    assert _health(runner)['skipped_steps'] == 1
    w = snaps.weights  # the step of iteration 4 was not applied
    assert torch.equal(w[1], w[3]) and not torch.equal(w[3], w[5])
    assert torch.isfinite(runner.model.linear.weight).all()


def test_stop_without_a_step_under_gradient_accumulation(tmp_path):
    runner = _runner(tmp_path, ToyDetector(nan_at={3}),
                     TrainingHealthHook(), accumulate=2)
    with pytest.raises(TrainingHealthError, match='iteration 3') as err:
        runner.train()
    msg = str(err.value)
    assert 'No optimizer step ran at this iteration' in msg
    assert 'the update was applied' not in msg
    state = osp.join(runner.work_dir, 'health', 'nonfinite_iter3_state.pth')
    assert f'the weights that gave these values are in {state}' in msg
    saved = torch.load(state, weights_only=False)['state_dict']
    assert torch.equal(saved['linear.weight'], runner.model.linear.weight)


def test_healthy_run_reports_nothing(tmp_path):
    torch.manual_seed(0)
    hook = TrainingHealthHook(collapse_after=0)
    runner = _runner(tmp_path, ToyDetector(), hook, epochs=10)
    runner.train()
    assert runner.iter == 40 and hook.findings == []
    assert _health(runner) == dict(status='healthy', skipped_steps=0,
                                   classifier_learned_at=None, findings=[])


def test_iteration_loop_and_batch_without_data_samples(tmp_path):
    runner = _runner(tmp_path, ToyDetector(nan_at={4}),
                     TrainingHealthHook(), iters=6, with_samples=False)
    with pytest.raises(TrainingHealthError, match='iteration 4') as err:
        runner.train()
    assert 'Images of the batch: unknown' in str(err.value)


def _curve(anchors, n, noise, seed):
    xs, ys = zip(*anchors)
    rng = np.random.default_rng(seed)
    base = np.exp(np.interp(np.arange(1, n + 1), xs, np.log(ys)))
    return base * np.exp(rng.normal(0, noise, n))


# The demo at lr 0.01, batch 4 (seed 0 and a fresh clone), iterations 1-100.
DEMO_LOSS = [(1, 2.2), (10, 1.60), (20, 1.32), (30, 1.39), (40, 2.37),
             (50, 2.55), (60, 3.54), (100, 9.14)]
DEMO_GRAD = [(1, 15), (10, 11), (20, 9), (30, 14), (40, 29), (50, 41),
             (60, 59), (100, 177)]

# Two real runs of the demo config (seed 0, batch 4, clip_grad max_norm 35)
# on CPU, per iteration: lr 0.01 with a 50-iteration warm-up (it diverged),
# and lr 0.005 with a 100-iteration warm-up (healthy).
DIVERGING_LOSS = [
    2.14, 2.08, 1.93, 1.85, 1.44, 1.18, 1.09, 1.6, 1.37, 1.31, 1.14, 1.11,
    1.16, 1.15, 0.98, 0.74, 0.77, 0.74, 0.68, 0.7, 0.72, 0.87, 1.5, 1.25,
    1.94, 2.17, 2.08, 3.66, 1.6, 1.14, 2.7, 2.52, 3.13, 3.1, 1.48, 0.69,
    0.82, 1.68, 6.78, 2.11, 8.28, 6.48, 2.44, 19.6, 3.42, 2.9, 8.54, 2.67,
    16.6, 15.69, 3.23, 4.14, 26, 12.83, 26.21, 57.35, 5.58, 36.19, 3.71,
    16.52, 6.32, 8.14, 6.62, 6.78, 34.21, 9.59, 97.14, 33.64, 7.41, 99.59,
    10.24, 4.41, 5.5, 3.31, 2.22, 2.17, 17.45, 2.48, 2.67, 2.48]
DIVERGING_GRAD = [
    12.6, 13.6, 14.3, 15, 14.4, 4.5, 6, 12.7, 10.2, 9, 5, 4.4, 3.6, 4.2,
    3.7, 5.4, 4.1, 4, 4.1, 8.5, 10, 11.8, 5, 9.9, 48.7, 76.4, 33.1, 58.1,
    11, 46.8, 41.5, 51.7, 91.3, 38.8, 13.2, 14.8, 14.6, 68.3, 73.2, 32.7,
    243.9, 80.5, 50.9, 240.8, 58, 32.1, 90.8, 110.4, 161.4, 118.6, 236.7,
    40.8, 1325.9, 120.2, 339.9, 652.1, 57.3, 746.8, 88.7, 153.6, 153.9,
    129.3, 221.6, 104.1, 587.5, 129.4, 1770, 264.7, 84.8, 1022, 80, 88.2,
    228.4, 196, 46.6, 15.7, 306.7, 2.3, 14.4, 22]
HEALTHY_LOSS = [
    2.14, 2.08, 1.98, 2.06, 1.93, 1.73, 1.53, 1.35, 1.17, 1.08, 1.26, 1.24,
    1.36, 1.33, 1.27, 1.13, 1.05, 1.07, 1.02, 0.98, 1, 1.02, 0.97, 0.79,
    0.73, 0.79, 0.69, 0.65, 0.43, 0.47, 0.59, 0.49, 0.53, 0.51, 1.01, 1.17,
    1.34, 1.28, 1.61, 1.72, 1.35, 1.09, 1.14, 1.06, 1.23, 1.23, 1.36, 1.28,
    1.07, 1.07, 1.14, 1.02, 1.25, 1.23, 1.59, 1.29, 1.45, 1.12, 1.23, 1.21,
    1.07, 0.86, 0.81, 1.03, 0.92, 1.13, 1.04, 1, 1.05, 1.02, 0.9, 0.99,
    0.89, 0.77, 0.95, 0.74, 0.8, 0.88, 0.89, 0.77, 0.75, 0.82, 0.79, 0.75,
    0.81, 1.09, 0.89, 0.86, 0.64, 0.75, 0.64, 0.68, 0.75, 0.66, 0.7, 0.69,
    0.65, 0.48, 0.65, 0.58, 0.59, 0.53, 0.54, 0.49, 0.63, 0.62, 0.56, 0.58,
    0.54, 0.44, 0.53, 0.53, 0.52, 0.45, 0.6, 0.5, 0.48, 0.54, 0.52, 0.46,
    0.45, 0.43, 0.45, 0.32, 0.39, 0.39, 0.42, 0.37, 0.38, 0.37, 0.43, 0.4,
    0.37, 0.41, 0.3, 0.32, 0.38, 0.32, 0.35, 0.35, 0.42, 0.38, 0.37, 0.37,
    0.37, 0.36, 0.32, 0.38, 0.41, 0.36]
HEALTHY_GRAD = [
    12.6, 13.5, 14.1, 12.9, 14.9, 15.8, 15.6, 11.2, 5.6, 3.8, 7.3, 8.1,
    9.5, 9.3, 7.8, 5.5, 3.9, 3.6, 3.3, 3.4, 3, 2.8, 3, 3.2, 3.4, 3.4, 3.4,
    3.1, 2.8, 3.1, 3.4, 3.4, 4.2, 3.3, 5.9, 8.9, 7.7, 13.8, 40.1, 36, 6.9,
    5.4, 8.6, 5.8, 6, 16.3, 21.3, 12, 5, 5.2, 5.9, 4.3, 3.9, 7.1, 9.2, 6.8,
    3.2, 3.6, 4.9, 5.3, 7, 7.4, 7.8, 12.5, 6.5, 11.2, 7.6, 8.1, 6.5, 9.5,
    4.7, 7.3, 6.5, 8.4, 8.8, 6.8, 8, 5.8, 8.2, 8.2, 6.1, 8.8, 7.5, 9.4,
    22.3, 17.1, 9.1, 7.1, 6.8, 7.7, 5, 6.3, 6.1, 6.4, 6.1, 5.2, 5.7, 7.2,
    6.2, 5.6, 7.1, 5.5, 6.4, 5.8, 5.4, 4.8, 7, 6, 5.2, 4.7, 5.8, 4.7, 5.1,
    4.6, 6.7, 4.8, 4.9, 6.6, 4.2, 5.4, 5.1, 5, 5.8, 3.1, 4, 3.1, 4.6, 3.3,
    4.4, 4.5, 5.7, 4.3, 6.1, 5.4, 5.5, 4.6, 5.4, 4.1, 5.1, 6.6, 7.4, 6.6,
    4.2, 4.9, 4.1, 4.5, 5, 7.2, 6.1, 4.9]


def _fake_runner(tmp_path, cfg=None, clip=None, lr=0.01):
    model = nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr),
                           clip_grad=clip)
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    return SimpleNamespace(
        model=model, optim_wrapper=wrapper, world_size=1, iter=0, epoch=0,
        cfg=cfg or Config(dict(train_dataloader=dict(batch_size=4),
                               model=dict())),
        train_dataloader=SimpleNamespace(batch_size=4), work_dir=str(work),
        train_loop=SimpleNamespace(),
        message_hub=MessageHub.get_instance(f'health_{tmp_path.name}'))


def _feed(hook, runner, losses, grads=None, acc=None, stop_at_finding=True):
    """One iteration per loss: a real step whose gradient norm is given."""
    for i, loss in enumerate(losses):
        runner.iter = i
        hook.before_train_iter(runner, i)
        if grads is not None:
            w, b = runner.model.weight, runner.model.bias
            w.grad = torch.tensor([[float(grads[i]), 0.]])
            b.grad = torch.zeros(1)
            runner.optim_wrapper.step()
            runner.optim_wrapper.zero_grad()
        outputs = dict(loss=torch.tensor(float(loss)))
        if acc is not None:
            outputs['acc'] = torch.tensor(float(acc[i]))
        hook.after_train_iter(runner, i, None, outputs)
        if hook.findings and stop_at_finding:
            return i + 1
    return None


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('clip', [None, dict(max_norm=35, norm_type=2)])
def test_demo_divergence_warns_within_first_epoch(tmp_path, seed, clip):
    runner = _fake_runner(tmp_path, clip=clip)
    hook = TrainingHealthHook()
    hook.before_train(runner)
    fired = _feed(hook, runner, _curve(DEMO_LOSS, 100, 0.1, seed),
                  _curve(DEMO_GRAD, 100, 0.1, seed + 10))
    # The demo clips at 35: within its first epoch (60 iterations); the
    # loss alone (no clip_grad) gives it away early in the second.
    assert fired is not None and fired <= (60 if clip else 75)
    (finding, ) = hook.findings
    assert finding['kind'] == 'divergence' and finding['action'] == 'warn'
    msg = finding['message']
    # lr 0.01 at batch 4 against SGD 0.02 at batch 16: 0.005 (2.0x).
    assert 'optim_wrapper.optimizer.lr=0.005' in msg and '2.0x' in msg
    assert 'its lowest level' in msg and 'warm up longer' in msg
    assert finding['early_loss'] < 1.6 and finding['ratio'] > 1.5
    if clip:
        assert 'max_norm 35' in msg and 'e.g. 11.7' in msg
    assert json.load(open(osp.join(runner.work_dir, 'health.json')))[
        'status'] == 'warned'


def test_divergence_reference_from_config_and_stop(tmp_path):
    path = tmp_path / 'leaf.py'
    path.write_text("_base_ = 'mmdet::_base_/schedules/schedule_1x.py'\n"
                    'optim_wrapper = dict(optimizer=dict(lr=0.01))\n'
                    'auto_scale_lr = dict(base_batch_size=4)\n'
                    'train_dataloader = dict(batch_size=2)\n'
                    'model = dict()\n')
    runner = _fake_runner(tmp_path, cfg=Config.fromfile(str(path)))
    hook = TrainingHealthHook(divergence='stop')
    hook.before_train(runner)
    with pytest.raises(TrainingHealthError, match='diverges') as err:
        _feed(hook, runner, _curve(DEMO_LOSS, 100, 0.1, 0))
    msg = str(err.value)
    assert 'mmdet::_base_/schedules/schedule_1x.py' in msg
    assert 'optim_wrapper.optimizer.lr=0.0025' in msg and '4.0x' in msg
    assert "divergence='warn'" in msg
    # A configured reference wins over the config's bases.
    hook = TrainingHealthHook(ref_lr=0.01, ref_batch_size=2)
    hook.before_train(runner)
    _feed(hook, runner, _curve(DEMO_LOSS, 100, 0.1, 0))
    assert 'the lr 0.01 is not above 0.01' in hook.findings[0]['message']


def test_clipped_on_most_steps_warns(tmp_path):
    runner = _fake_runner(tmp_path, clip=dict(max_norm=35))
    hook = TrainingHealthHook()
    hook.before_train(runner)
    flat = _curve([(1, 1.0), (200, 1.0)], 200, 0.1, 0)
    grads = _curve([(1, 150), (200, 180)], 200, 0.1, 1)
    assert _feed(hook, runner, flat, grads) == 20  # right after burn-in
    msg = hook.findings[0]['message']
    assert 'on 15 of the last 15 steps (100%)' in msg
    assert hook.findings[0]['ratio'] < 1.5


def test_real_demo_runs(tmp_path):
    runner = _fake_runner(tmp_path, clip=dict(max_norm=35))
    hook = TrainingHealthHook()
    hook.before_train(runner)
    assert _feed(hook, runner, DIVERGING_LOSS, DIVERGING_GRAD) <= 40
    # The healthy run: its loss dips to 0.5 near iteration 30 and rises
    # to 1.2-1.7 for a while (as the RPN finds objects): no warning.
    runner = _fake_runner(tmp_path, clip=dict(max_norm=35), lr=0.005)
    hook = TrainingHealthHook()
    hook.before_train(runner)
    assert _feed(hook, runner, HEALTHY_LOSS, HEALTHY_GRAD) is None


def test_healthy_noisy_falling_loss_reports_nothing(tmp_path):
    runner = _fake_runner(tmp_path, clip=dict(max_norm=35))
    hook = TrainingHealthHook()
    hook.before_train(runner)
    n = 300
    loss = _curve([(1, 2.2), (50, 1.4), (150, 0.9), (300, 0.6)], n, 0.2, 3)
    grads = _curve([(1, 12), (300, 8)], n, 0.3, 4)
    assert _feed(hook, runner, loss, grads) is None
    assert hook.findings == []


class ToyBBoxHead(nn.Module):
    """What the background counter looks for in an mmdet bbox head."""
    num_classes, bbox_coder, reg_class_agnostic = 3, None, False

    def __init__(self):
        super().__init__()
        self.labels = torch.zeros(0, dtype=torch.long)

    def loss_and_target(self):
        return self.get_targets()

    def get_targets(self, concat=True):
        return (self.labels, None, None, None)


def _epoch(tmp_path, acc, bg_share=None, pos_fraction=None, max_iters=None,
           finish=True, acc_key='acc', **hook_args):
    """20-iteration epochs, each with a constant ``acc`` (and background);
    ``acc`` a list: one epoch per value."""
    rcnn = dict(sampler=dict(pos_fraction=pos_fraction))
    cfg = Config(dict(train_dataloader=dict(batch_size=4),
                      model=dict(train_cfg=dict(rcnn=rcnn))))
    runner = _fake_runner(tmp_path, cfg=cfg)
    head = ToyBBoxHead()
    if bg_share is not None:
        runner.model = nn.Sequential(runner.model, head)
        n_bg = round(bg_share * 100)
        head.labels = torch.tensor([3] * n_bg + [0] * (100 - n_bg))
    runner.train_loop.max_iters = max_iters
    hook = TrainingHealthHook(collapse_after=0, **hook_args)
    hook.before_train(runner)
    per_epoch = acc if isinstance(acc, (list, tuple)) else [acc]
    for epoch, value in enumerate(per_epoch):
        runner.epoch = epoch
        for i in range(20 * epoch, 20 * (epoch + 1)):
            runner.iter = i
            hook.before_train_iter(runner, i)
            head.loss_and_target()  # the roi head's loss
            outputs = dict(loss=torch.tensor(1.0))
            if value is not None:
                outputs[acc_key] = torch.tensor(float(value))
            hook.after_train_iter(runner, i, None, outputs)
        hook.after_train_epoch(runner)
    if not finish:  # killed before after_train
        return hook.findings
    hook.after_train(runner)
    assert 'get_targets' not in vars(head)  # unwrapped
    return hook.findings


def test_collapsed_classifier_at_epoch_end(tmp_path):
    # acc equal to the measured background share: collapsed.
    (finding, ) = _epoch(tmp_path, acc=75.0, bg_share=0.75)
    assert finding['kind'] == 'collapse'
    assert 'background share 75.0 % (measured on the RoIs)' in \
        finding['message']
    assert finding['epoch'] == 1 and finding['iteration'] == 20
    # Few GT: 90 % background, acc 89.5: collapsed though above 75 %.
    assert len(_epoch(tmp_path, acc=89.5, bg_share=0.9)) == 1
    # A classifier that beats all-background by more than a point.
    assert _epoch(tmp_path, acc=80.0, bg_share=0.75) == []


def test_no_collapse_check_for_a_semi_supervised_model(tmp_path):
    # mmdet's SemiBaseDetector logs sup_acc / unsup_acc, while the RoI
    # counter sees both branches' RoIs (the unlabelled branch's are mostly
    # background): sup_acc against that share would call a healthy
    # classifier collapsed, so neither is compared.
    for key in ('sup_acc', 'unsup_acc'):
        assert _epoch(tmp_path, acc=75.0, bg_share=0.75, acc_key=key) == []


def test_collapse_fallback_and_empty_epochs(tmp_path):
    # No bbox head to count from: 1 - pos_fraction, a lower bound.
    (finding, ) = _epoch(tmp_path, acc=75.5, pos_fraction=0.25)
    assert '(100 x (1 - pos_fraction))' in finding['message']
    assert _epoch(tmp_path, acc=80.0, pos_fraction=0.25) == []
    # Nothing to compare with, or no acc logged: silent.
    assert _epoch(tmp_path, acc=75.0) == []
    assert _epoch(tmp_path, acc=None, pos_fraction=0.25) == []


def _val(hook, runner, scores):
    for i, batch in enumerate(scores):
        samples = []
        for s in batch:
            pred = InstanceData(scores=torch.tensor(s),
                                labels=torch.zeros(len(s), dtype=torch.long))
            samples.append(BaseDataElement(pred_instances=pred))
        hook.after_val_iter(runner, i, None, samples)
    hook.after_val_epoch(runner, {})


def test_no_foreground_on_validation(tmp_path):
    runner = _fake_runner(tmp_path)
    hook = TrainingHealthHook(collapse_after=0)
    _val(hook, runner, [[[0.9]]])  # a validation outside of training
    hook.before_train(runner)
    _val(hook, runner, [[[0.2, 0.1], []], [[0.05]]])
    (finding, ) = hook.findings
    assert finding['kind'] == 'no_foreground'
    assert 'on the 3 validation images' in finding['message']
    _val(hook, runner, [[[0.2, 0.1], [0.31]]])  # one detection: fine
    _val(hook, runner, [])  # an empty validation: nothing to say
    _val(hook, runner, [[[]]])  # no prediction at all: collapsed
    assert [f['kind'] for f in hook.findings] == ['no_foreground'] * 2
    assert hook.findings[-1]['images'] == 1


def test_monitors_on_their_own():
    monitor = DivergenceMonitor(window=3, burn_in=5)
    # A spike during burn-in and a single spike later do not count.
    for i, loss in enumerate([9.0, 1, 1, 1, 1, 1, 5, 1, 1]):
        assert monitor.update(i + 1, loss) is None
    stats = [monitor.update(10 + i, loss) for i, loss in enumerate([3, 3])]
    assert stats[0] is None and stats[1]['ratio'] == 3.0
    assert stats[1]['early_loss'] == 1.0 and stats[1]['steps'] == 0
    assert DivergenceMonitor(burn_in=0).update(1, None) is None
    assert classifier_collapse([]) is None
    assert classifier_collapse([(1, 75.0, None)]) is None
    assert classifier_collapse([(1, 10.0, 0.9), (2, 75.0, 0.75)])[
        'background'] == 75.0  # the second half only


def test_resume_keeps_earlier_findings(tmp_path):
    """health.json continues after --resume: findings up to the resumed
    iteration are kept (and counted as skipped), later ones dropped."""
    hook = TrainingHealthHook(nonfinite='skip')
    runner = _runner(tmp_path, ToyDetector(nan_at={2}), hook, epochs=1)
    runner.train()  # 4 iterations, epoch_1.pth at the end
    health = _health(runner)
    assert health['skipped_steps'] == 1
    # An attempt that went further, then died before a checkpoint.
    health['findings'].append(dict(kind='divergence', iteration=6, epoch=2,
                                   action='warn', message='later'))
    with open(osp.join(runner.work_dir, 'health.json'), 'w') as f:
        json.dump(health, f)
    resumed = TrainingHealthHook(nonfinite='skip')
    runner = _runner(tmp_path, ToyDetector(), resumed, epochs=2)
    runner._resume = True  # as --resume sets it
    runner.train()
    assert runner.iter == 8
    assert [(f['kind'], f['iteration']) for f in resumed.findings] == [
        ('nonfinite', 2)]
    assert _health(runner)['skipped_steps'] == 1
    assert _health(runner)['status'] == 'warned'


def test_collapse_phases_get_their_own_fixes():
    """Never clearly better than all-background in the first half: a slow
    start (not 'lower the lr'); better once and then not: a collapse."""
    from rcnn_plugin.engine.hooks.collapse import (
        check_collapse,
        collapse_message,
    )

    def epoch(acc, it, learned=None, progress=0.2, bg=0.75, frac=None):
        recs = [(i, acc, bg) for i in range(it - 3, it + 1)]
        return check_collapse(recs, 1.0, frac, learned, progress)
    found, phase, learned = epoch(75.0, 20)
    assert phase == 'early' and learned is None
    msg = collapse_message(found, 1.0, phase)
    assert msg.startswith('the classifier has not yet beaten')
    assert 'slow start' in msg and 'lower the lr' not in msg.split(
        'slows it')[0]
    assert 'iterations 19-20' in msg
    # kitti_yolo at lr 0.005: one epoch just above the share inside the
    # slow start does not count as learned.
    assert epoch(76.5, 40) == (None, None, None)
    assert epoch(75.0, 60)[1] == 'early'
    # A clear win (more than 3 margins) counts; a later collapse is one.
    assert epoch(80.0, 80) == (None, None, 80)
    found, phase, learned = epoch(75.0, 100, learned=80)
    assert (phase, learned) == ('learned', 80)
    assert 'Fix: lower the lr' in collapse_message(found, 1.0, phase)
    # Past half the schedule, or unknown progress: late.
    assert epoch(75.0, 20, progress=0.6)[1] == 'late'
    assert epoch(75.0, 20, progress=None)[1] == 'late'
    assert 'raise the lr' in collapse_message(found, 1.0, 'late')
    # A win over the fallback share (a lower bound) is not "learned".
    assert epoch(90.0, 20, bg=None, frac=0.25) == (None, None, None)
    # Nothing measurable: nothing said, nothing learned.
    assert epoch(90.0, 20, bg=None) == (None, None, None)


def test_collapse_through_the_hook_and_resume(tmp_path):
    # First half, never learned: only warned even with collapse='stop'.
    (finding, ) = _epoch(tmp_path, acc=75.0, bg_share=0.75, max_iters=100,
                         collapse='stop')
    assert finding['action'] == 'warn' and finding['phase'] == 'early'
    assert finding['message'].startswith('the classifier has not yet')
    # A clear win, then a collapse: reported (and stopped) as a collapse.
    with pytest.raises(TrainingHealthError, match='collapsed after'):
        _epoch(tmp_path, acc=[80.0, 75.0], bg_share=0.75, max_iters=100,
               collapse='stop')
    health = json.loads((tmp_path / 'work' / 'health.json').read_text())
    assert health['classifier_learned_at'] == 20
    # Resumed at iteration 40: the learned state comes back from the file;
    # from iteration 10 (before it learned) it does not.
    runner = _fake_runner(tmp_path)
    runner.iter = 40
    assert read_health(runner)[2] == 20
    runner.iter = 10
    assert read_health(runner)[2] is None


def test_learned_is_kept_for_a_resume_without_any_finding(tmp_path):
    # health.json was written only with a finding or at the end: a run
    # killed after the classifier learned resumed as never learned, so a
    # later collapse was called an early slow start (and only warned)
    assert _epoch(tmp_path, acc=80.0, bg_share=0.75, max_iters=100,
                  finish=False) == []
    runner = _fake_runner(tmp_path)
    runner.iter = 40
    assert read_health(runner)[2] == 20


def test_img_paths_of_plain_and_multi_branch_batches():
    def sample(path):
        return BaseDataElement(metainfo=dict(img_path=path))
    plain = dict(inputs=[], data_samples=[sample('a.png'), sample('b.png')])
    assert img_paths(plain) == ['a.png', 'b.png']
    # mmdet's MultiBranch: one list of samples per branch; the teacher and
    # student views of one image are one entry each.
    multi = dict(inputs={}, data_samples=dict(
        sup=[sample('s.jpg')],
        unsup_teacher=[sample('t.png')],
        unsup_student=[sample('t.png')]))
    assert img_paths(multi) == ['s.jpg (sup)', 't.png (unsup_teacher)',
                                't.png (unsup_student)']
    assert img_paths(dict(inputs=[], data_samples=dict(sup=[]))) == []
    assert img_paths(None) == []


def test_a_corrupt_health_file_is_a_sentence_naming_it(tmp_path):
    from rcnn_plugin.engine.hooks.health_file import (
        read_findings,
        write_health,
    )
    write_health(str(tmp_path / 'health.json'), [], 0)
    assert read_findings(str(tmp_path)) == []
    (tmp_path / 'health.json').write_text('{"status": "warned", "find')
    with pytest.raises(ValueError, match=r'health\.json is not valid JSON.*'
                       'move it aside'):
        read_findings(str(tmp_path))


def test_the_saved_weights_are_the_live_ones_under_ema(tmp_path):
    from mmengine.hooks import EMAHook
    runner = _runner(tmp_path, ToyDetector(nan_at={3}), TrainingHealthHook(),
                     extra_hooks=[EMAHook(momentum=0.5)])
    with pytest.raises(TrainingHealthError):
        runner.train()
    state = torch.load(osp.join(runner.work_dir, 'health',
                                'nonfinite_iter3_state.pth'),
                       weights_only=False)
    ema = runner.hooks[-1] if isinstance(runner.hooks[-1], EMAHook) else \
        next(h for h in runner.hooks if isinstance(h, EMAHook))
    live = runner.model.linear.weight.detach()
    averaged = ema.ema_model.module.linear.weight.detach()
    assert not torch.equal(live, averaged)
    assert torch.equal(state['state_dict']['linear.weight'], live)
    assert state['meta']['iter'] == 3


def test_resume_keeps_the_divergence_baseline(tmp_path):
    """The lowest loss and the windows come back with --resume, so a rise
    that began before the checkpoint is still measured from its low."""
    from rcnn_plugin.engine.hooks.health_monitors import DivergenceMonitor
    hook = TrainingHealthHook()
    runner = _runner(tmp_path, ToyDetector(), hook, epochs=1)
    runner.train()  # 4 iterations, epoch_1.pth at the end
    saved = hook.divergence.state_dict()
    assert saved['seen'] == 4 and len(saved['losses']) == 4
    ckpt = torch.load(osp.join(runner.work_dir, 'epoch_1.pth'),
                      weights_only=False)
    assert ckpt['message_hub']['runtime_info'][DivergenceMonitor.HUB_KEY] \
        == saved
    resumed = TrainingHealthHook()
    runner = _runner(tmp_path, ToyDetector(), resumed, epochs=1)
    runner._resume = True  # as --resume sets it (nothing left to train)
    runner.train()
    assert resumed.divergence.state_dict() == saved
    fresh = _runner(tmp_path / 'new', ToyDetector(), TrainingHealthHook(),
                    epochs=1)
    assert DivergenceMonitor.from_hub(fresh).seen == 0  # iteration 0
