"""OptunaPruningHook: reports each validation, stops a pruned training."""
import math
from types import SimpleNamespace

import pytest

optuna = pytest.importorskip('optuna', reason='the tune extra is not '
                             'installed (pip install -e ".[tune]")')

from rcnn_plugin.engine import OptunaPruningHook  # noqa: E402

MEDIAN = dict(type='MedianPruner', n_startup_trials=1, n_warmup_steps=0)


def _study(tmp_path, earlier=(0.5, 0.6)):
    """A study whose finished trials reached ``earlier`` at epoch 1."""
    storage = f'sqlite:///{tmp_path}/s.db'
    study = optuna.create_study(study_name='s', storage=storage,
                                direction='maximize')
    dist = optuna.distributions.FloatDistribution(0, 1)
    for v in earlier:
        study.add_trial(optuna.trial.create_trial(
            params=dict(x=v), distributions=dict(x=dist), value=v,
            intermediate_values={1: v}))
    return storage, study


def _runner(epoch):
    return SimpleNamespace(epoch=epoch,
                           train_loop=SimpleNamespace(stop_training=False))


def _hook(storage, study, **kwargs):
    trial = study.ask()
    hook = OptunaPruningHook(storage=storage, study_name='s',
                             trial_id=trial._trial_id,
                             metric='pascal_voc/mAP', **kwargs)
    return hook, trial


def test_reports_each_validation_and_keeps_a_good_trial(tmp_path):
    storage, study = _study(tmp_path)
    hook, trial = _hook(storage, study, pruner=MEDIAN)
    for epoch, value in ((1, 0.7), (2, 0.8)):
        runner = _runner(epoch)
        hook.after_val_epoch(runner, {'pascal_voc/mAP': value})
        assert runner.train_loop.stop_training is False
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.intermediate_values == {1: 0.7, 2: 0.8}
    assert 'pruned_reason' not in stored.user_attrs


def test_a_trial_below_the_median_is_stopped(tmp_path):
    storage, study = _study(tmp_path)
    hook, trial = _hook(storage, study, pruner=MEDIAN)
    runner = _runner(1)
    hook.after_val_epoch(runner, {'pascal_voc/mAP': 0.1})
    assert runner.train_loop.stop_training is True
    attrs = study._storage.get_trial(trial._trial_id).user_attrs
    assert attrs['pruned_at_epoch'] == 1
    assert 'below' in attrs['pruned_reason']


def test_an_iteration_loop_reports_at_its_iteration(tmp_path):
    from mmengine.runner import IterBasedTrainLoop

    class Loop(IterBasedTrainLoop):
        def __init__(self):  # only what the hook reads
            self.stop_training = False

    storage, study = _study(tmp_path, earlier=())
    hook, trial = _hook(storage, study, pruner=MEDIAN)
    for it, value in ((40, 0.3), (80, 0.5), (120, 0.6)):
        # An IterBasedTrainLoop's runner stays at epoch 0.
        runner = SimpleNamespace(epoch=0, iter=it, train_loop=Loop())
        hook.after_val_epoch(runner, {'pascal_voc/mAP': value})
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.intermediate_values == {40: 0.3, 80: 0.5, 120: 0.6}


def test_without_a_pruner_nothing_is_stopped(tmp_path):
    storage, study = _study(tmp_path)
    hook, _ = _hook(storage, study)
    runner = _runner(1)
    hook.after_val_epoch(runner, {'pascal_voc/mAP': 0.0})
    assert runner.train_loop.stop_training is False


def test_nan_metric_and_empty_validation_stop_with_a_reason(tmp_path):
    storage, study = _study(tmp_path)
    hook, trial = _hook(storage, study)
    runner = _runner(1)
    hook.after_val_epoch(runner, {'pascal_voc/mAP': math.nan})
    assert runner.train_loop.stop_training is True
    reason = study._storage.get_trial(trial._trial_id).user_attrs[
        'pruned_reason']
    assert 'nan' in reason
    hook, trial = _hook(storage, study)
    runner = _runner(1)
    hook.after_val_epoch(runner, {})  # CocoMetric with no detections
    assert runner.train_loop.stop_training is True
    assert 'no metrics' in study._storage.get_trial(
        trial._trial_id).user_attrs['pruned_reason']


def test_a_metric_the_validation_does_not_give_is_named(tmp_path):
    storage, study = _study(tmp_path)
    hook, _ = _hook(storage, study)
    with pytest.raises(KeyError, match=r"no 'pascal_voc/mAP'.*coco/bbox_mAP"):
        hook.after_val_epoch(_runner(1), {'coco/bbox_mAP': 0.3})
