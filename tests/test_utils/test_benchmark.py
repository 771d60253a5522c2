"""Timing helpers: ABBA order, summaries, batch, weight sharing."""
import pytest
import torch
from torch import nn

from rcnn_plugin.utils.benchmark import (
    abba,
    share_weights,
    summarize,
    synthetic_batch,
)


def test_summarize_quartiles_by_hand():
    res = summarize([4., 1., 3., 2., 5.])
    assert res['median'] == 3. and res['q1'] == 2. and res['q3'] == 4.
    assert res['iqr'] == 2. and res['n'] == 5
    assert summarize([7.])['iqr'] == 0.
    with pytest.raises(ValueError):
        summarize([])


def test_abba_interleaves_and_ratios(monkeypatch):
    import rcnn_plugin.utils.benchmark as benchmark
    calls = []
    cost = dict(A=1., B=3.)
    clock = iter([1., 2., 3., 4.] * 3)  # a linear drift within each round

    def fake_time_once(fn, device, iters=1, clock_name='wall'):
        fn()  # a deterministic clock: the ratio must not depend on load
        return cost[calls[-1]] * next(clock)

    def arm(name):
        return lambda: calls.append(name)

    monkeypatch.setattr(benchmark, 'time_once', fake_time_once)
    res = abba(arm('A'), arm('B'), torch.device('cpu'), rounds=3, warmup=1)
    assert calls == ['A', 'B'] + ['A', 'B', 'B', 'A'] * 3
    assert res['ratio']['n'] == 3
    # ABBA order: A sees slots 1 and 4, B slots 2 and 3; a linear drift
    # cancels
    assert res['ratio']['median'] == pytest.approx(3.)
    assert res['a']['median'] == pytest.approx(2.5)
    assert res['b']['median'] == pytest.approx(7.5)
    with pytest.raises(ValueError):
        abba(arm('A'), arm('B'), torch.device('cpu'), rounds=0)


def test_synthetic_batch_is_fixed():
    a = synthetic_batch(2, (32, 48), 3, num_classes=4)
    b = synthetic_batch(2, (32, 48), 3, num_classes=4)
    assert len(a['inputs']) == 2 and a['inputs'][0].shape == (3, 32, 48)
    assert torch.equal(a['inputs'][1], b['inputs'][1])
    gt = a['data_samples'][0].gt_instances
    assert len(gt) == 3 and int(gt.labels.max()) < 4
    assert torch.equal(gt.bboxes, b['data_samples'][0].gt_instances.bboxes)
    labels = torch.cat([s.gt_instances.labels for s in synthetic_batch(
        4, (32, 48), 10, num_classes=3)['data_samples']])
    assert set(labels.tolist()) == {0, 1, 2}  # class 0 too
    one = synthetic_batch(2, (32, 48), 3, num_classes=1, with_mask=True)
    assert one['data_samples'][1].gt_instances.labels.tolist() == [0, 0, 0]
    assert len(one['data_samples'][1].gt_instances.masks) == 3
    empty = synthetic_batch(1, (32, 48), 0, num_classes=4)
    assert len(empty['data_samples'][0].gt_instances) == 0
    with pytest.raises(ValueError):
        synthetic_batch(0, (32, 48), 1, num_classes=4)
    with pytest.raises(ValueError, match='num_classes'):
        synthetic_batch(1, (32, 48), 1, num_classes=0)


def test_share_weights_only_when_shapes_match():
    a, b, c = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 4)
    assert share_weights(a, b)
    assert torch.equal(a.weight, b.weight)
    assert not share_weights(a, c)


def test_arm_applies_efficient_conv_bn_eval_like_the_runner():
    from mmengine.config import Config

    from rcnn_plugin.utils.benchmark_runner import prepare_arm

    from conftest import REPO, shrink_model
    cfg = Config.fromfile(
        f'{REPO}/configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
    cfg.model = shrink_model(cfg.model)
    batch = synthetic_batch(1, (64, 96), 2, num_classes=3)
    ref = prepare_arm('A', cfg, 'cpu', batch).model
    cfg.efficient_conv_bn_eval = ['backbone']
    fast = prepare_arm('B', cfg, 'cpu', batch).model
    assert 'forward' in vars(fast.backbone)  # traced and rewritten
    share_weights(ref, fast)
    gen = torch.Generator().manual_seed(0)
    for a, b in zip(ref.backbone.modules(), fast.backbone.modules()):
        if isinstance(a, nn.BatchNorm2d):  # frozen statistics that matter
            a.running_var.copy_(torch.rand(a.num_features, generator=gen)
                                + 0.5)
            b.running_var.copy_(a.running_var)
    x = torch.randn(1, 3, 64, 96, generator=gen)
    ref.train()
    fast.train()  # norm_eval keeps BN in eval mode: conv and BN fold
    for a, b in zip(ref.backbone(x), fast.backbone(x)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_process_clock_counts_work_not_waiting():
    import time

    from rcnn_plugin.utils.benchmark import time_once
    cpu = torch.device('cpu')
    assert time_once(lambda: time.sleep(0.05), cpu) >= 0.05
    assert time_once(lambda: time.sleep(0.05), cpu, clock='process') < 0.02
    with pytest.raises(ValueError, match='clock'):
        time_once(lambda: None, cpu, clock='gpu')


def test_amp_wrapper_without_dtype_is_labelled_in_its_autocast_dtype():
    """mmengine's AmpOptimWrapper keeps cast_dtype None and autocasts in
    the device's default: the arm is not fp32 (its label and inference)."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from rcnn_plugin.utils.benchmark_runner import amp_dtype
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plain = OptimWrapper(sgd)
    assert amp_dtype(plain, 'cpu') is None
    amp = AmpOptimWrapper.__new__(AmpOptimWrapper)  # no CUDA needed
    amp.cast_dtype = None
    assert amp_dtype(amp, 'cuda') == torch.float16
    assert amp_dtype(amp, 'cpu') == torch.bfloat16
    amp.cast_dtype = torch.bfloat16
    assert amp_dtype(amp, 'cuda') == torch.bfloat16
