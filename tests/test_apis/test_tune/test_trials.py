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


def test_a_decay_is_never_rounded_onto_the_last_epoch():
    """1.5 rounds to 2 of a 2-epoch trial, where MultiStepLR would never
    decay; [16, 22] of 24 in 6 epochs: 5.5 -> 6 likewise."""
    for max_epochs, milestones, epochs, expected in (
            (8, [6], 2, [1]), (4, [3], 2, [1]), (24, [16, 22], 6, [4, 5]),
            (24, [16, 22], 4, [3, 3])):
        cfg = Config(dict(param_scheduler=[dict(
            type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
            milestones=milestones)]))
        scale_schedule(cfg, epochs / max_epochs, epochs)
        assert cfg.param_scheduler[0]['milestones'] == expected
        assert cfg.param_scheduler[0]['end'] == epochs
