"""A trial of --epochs trains the config's schedule compressed to it."""
from types import SimpleNamespace

from mmengine.config import Config

from rcnn_plugin.apis.tune.trials import scale_schedule, trial_config

SCHEDULE_8E = dict(
    train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8),
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
             end=100),
        dict(type='MultiStepLR', begin=0, end=8, by_epoch=True,
             milestones=[6], gamma=0.1)])


def test_a_four_epoch_trial_warms_up_and_decays_as_the_config_does():
    # Before, a 4-epoch trial kept the 100-iteration warm-up (half of its
    # 208 iterations on BCCD) and the decay after epoch 6, never reached.
    opts = SimpleNamespace(epochs=4, val_interval=1, seed=0, storage='s',
                           study_name='n', pruner='median')
    cfg = trial_config(Config(SCHEDULE_8E), [], {}, {}, opts,
                       'pascal_voc/mAP', 0, '/tmp/trial')
    warmup, decay = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == 4 and warmup['end'] == 50
    assert (decay['begin'], decay['end'], decay['milestones']) == (0, 4, [3])


def test_other_schedulers_and_sentinels():
    cfg = Config(dict(param_scheduler=dict(
        type='CosineAnnealingLR', T_max=12, begin=1, end=10**9)))
    scale_schedule(cfg, 1 / 3)
    assert (cfg.param_scheduler['T_max'], cfg.param_scheduler['begin'],
            cfg.param_scheduler['end']) == (4, 0, 10**9)
    same = Config(SCHEDULE_8E)
    scale_schedule(same, 1)
    assert same.param_scheduler[1]['milestones'] == [6]
    # a short last phase keeps a step; step sizes and periods scale too
    cfg = Config(dict(param_scheduler=[
        dict(type='ConstantLR', begin=285, end=300),
        dict(type='StepLR', step_size=4),
        dict(type='CosineRestartLR', periods=[6, 6])]))
    scale_schedule(cfg, 2 / 300)
    const, step, restart = cfg.param_scheduler
    assert (const['begin'], const['end']) == (2, 3)
    assert step['step_size'] == 1 and restart['periods'] == [1, 1]
