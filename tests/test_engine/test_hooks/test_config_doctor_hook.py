"""ConfigDoctorHook: a broken config stops before the first iteration."""
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from rcnn_plugin.engine import ConfigDoctorError, ConfigDoctorHook


def _runner(tiny_config, tmp_path, changes):
    cfg = Config.fromfile(tiny_config)
    cfg.merge_from_dict(changes)
    cfg.work_dir = str(tmp_path / 'work')
    return Runner.from_cfg(cfg)


def test_tiny_config_enables_the_hook(tiny_config):
    hooks = Config.fromfile(tiny_config).custom_hooks
    assert [h['type'] for h in hooks] == [
        'ConfigDoctorHook', 'TrainingHealthHook']


@pytest.mark.slow
def test_broken_config_stops_before_first_iteration(tiny_config, tmp_path):
    runner = _runner(tiny_config, tmp_path,
                     {'model.roi_head.bbox_head.num_classes': 80})
    with pytest.raises(ConfigDoctorError) as err:
        runner.train()
    assert runner.iter == 0 and runner.epoch == 0
    msg = str(err.value)
    assert 'before the first iteration' in msg
    assert 'model.roi_head.bbox_head.num_classes is 80' in msg
    assert 'set model.roi_head.bbox_head.num_classes=3' in msg


def _fake_runner(tiny_config, changes=None):
    """What the hook reads from a runner: cfg, model, dataset, world size."""
    from mmdet.registry import DATASETS, MODELS

    from rcnn_plugin.config_doctor import prepare_registries
    cfg = Config.fromfile(tiny_config)
    cfg.merge_from_dict(changes or {})
    prepare_registries(cfg)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return SimpleNamespace(
        cfg=cfg, model=MODELS.build(cfg.model), world_size=1,
        train_dataloader=SimpleNamespace(dataset=dataset))


def test_good_config_passes_and_warnings_do_not_stop(tiny_config):
    ConfigDoctorHook().before_train(_fake_runner(tiny_config))
    # batch 8 against base_batch_size 4: a warning, not an error ...
    runner = _fake_runner(tiny_config, {'train_dataloader.batch_size': 8})
    ConfigDoctorHook().before_train(runner)
    # ... unless fail_on='warning'.
    with pytest.raises(ConfigDoctorError, match='lr = 0.002'):
        ConfigDoctorHook(fail_on='warning').before_train(runner)


def test_disabled_or_never_does_not_stop(tiny_config):
    ConfigDoctorHook(enabled=False).before_train(object())  # reads nothing
    runner = _fake_runner(
        tiny_config, {'model.rpn_head.anchor_generator.strides': [8] * 5})
    with pytest.raises(ConfigDoctorError, match='feature_strides'):
        ConfigDoctorHook(checks=['feature_strides']).before_train(runner)
    ConfigDoctorHook(fail_on='never').before_train(runner)


def test_bad_arguments():
    with pytest.raises(ValueError, match='fail_on'):
        ConfigDoctorHook(fail_on='sometimes')
