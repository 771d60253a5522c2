"""Search spaces: keys resolved against the config, values written back."""
import pytest
from mmengine.config import Config

from rcnn_plugin.apis.tune import (
    Param,
    SpaceError,
    best_overrides,
    load_space,
    resolve_key,
)
from rcnn_plugin.apis.tune.space import set_key

CFG = dict(
    optim_wrapper=dict(optimizer=dict(lr=0.02)),
    train_pipeline=[dict(type='LoadImageFromFile'),
                    dict(type='Resize', scale=(640, 480)),
                    dict(type='RandomFlip', prob=0.5)],
    train_dataloader=dict(dataset=dict(pipeline=[
        dict(type='Resize', scale=(640, 480)),
        dict(type='Resize', scale=(1, 1))])))


def test_keys_resolve_through_dicts_indices_and_type_selectors():
    cfg = Config(CFG)
    assert resolve_key(cfg, 'optim_wrapper.optimizer.lr') == [
        'optim_wrapper', 'optimizer', 'lr']
    assert resolve_key(cfg, 'train_pipeline[type=Resize].scale') == [
        'train_pipeline', 1, 'scale']
    assert resolve_key(cfg, 'train_pipeline.-1.prob') == [
        'train_pipeline', 2, 'prob']
    assert resolve_key(cfg, 'optim_wrapper.optimizer.weight_decay',
                       new_key=True)[-1] == 'weight_decay'


@pytest.mark.parametrize('key, message', [
    ('optim_wrapper.optimizer.momentum', r"'optim_wrapper\.optimizer\.momen"
     r"tum' does not exist: optim_wrapper\.optimizer has no 'momentum'"),
    ('optim_wrapper.optimiser.lr', "has no 'optimiser'"),
    ('train_pipeline[type=Mosaic].prob', "0 elements of type 'Mosaic'"),
    ('train_dataloader.dataset.pipeline[type=Resize].scale',
     "2 elements of type 'Resize'"),
    ('train_pipeline.7.prob', 'has 3 elements, no index 7'),
    ('optim_wrapper.optimizer.lr.x', 'is a float, not a dict'),
])
def test_a_key_not_in_the_config_is_named(key, message):
    with pytest.raises(SpaceError, match=message):
        resolve_key(Config(CFG), key)


def test_best_overrides_write_lists_whole_and_read_back(tmp_path):
    cfg = Config(CFG)
    paths = [resolve_key(cfg, 'optim_wrapper.optimizer.lr'),
             resolve_key(cfg, 'train_pipeline[type=Resize].scale')]
    set_key(cfg, paths[0], 0.01)
    set_key(cfg, paths[1], (800, 600))
    out = best_overrides(cfg, paths)
    assert out['optim_wrapper'] == {'optimizer': {'lr': 0.01}}
    assert [s['type'] for s in out['train_pipeline']] == [
        'LoadImageFromFile', 'Resize', 'RandomFlip']
    assert out['train_pipeline'][1]['scale'] == (800, 600)
    assert CFG['train_pipeline'][1]['scale'] == (640, 480)  # not shared


@pytest.mark.parametrize('spec, message', [
    (dict(type='float', low=1), 'needs low and high'),
    (dict(type='float', low=2, high=1), 'low 2 is above high 1'),
    (dict(type='int', low=1, high=3, choices=[1]), 'unknown argument'),
    (dict(type='categorical'), 'needs choices'),
    (dict(type='uniform', low=0, high=1), "type must be 'float'"),
    (0.1, 'must be a dict'),
    # optuna's own rules, at reading (a traceback at the first draw)
    (dict(type='float', low=0, high=0.01, log=True), r"space\['lr'\]: .*"
     'low'),
    (dict(type='float', low=0.1, high=1, log=True, step=0.1),
     r"space\['lr'\]: .*step"),
    (dict(type='int', low=0, high=4, log=True), r"space\['lr'\]: .*low"),
])
def test_bad_parameters_are_sentences(spec, message):
    with pytest.raises(SpaceError, match=message):
        Param('lr', spec, 'space.py')


def test_tuple_choices_are_offered_by_repr_and_mapped_back():
    optuna = pytest.importorskip('optuna')
    param = Param('scale', dict(type='categorical',
                                choices=[(640, 480), (800, 600)]), 'space.py')
    study = optuna.create_study()
    trial = study.ask()
    value = param.suggest(trial)
    assert value in [(640, 480), (800, 600)]
    assert trial.params['scale'] == repr(value)
    assert param.value_of(repr(value)) == value


def test_load_space_errors(tmp_path):
    with pytest.raises(SpaceError, match='no space file'):
        load_space(str(tmp_path / 'missing.py'))
    bad = tmp_path / 'bad.py'
    bad.write_text('spaces = {}\n')
    with pytest.raises(SpaceError, match='must define space'):
        load_space(str(bad))
    good = tmp_path / 'good.py'
    good.write_text("space = dict(lr=dict(type='float', low=0.001, "
                    "high=0.1, log=True, keys=['a.b']))\n")
    [param] = load_space(str(good))
    assert (param.name, param.keys, param.args['log']) == ('lr', ['a.b'],
                                                          True)


def test_the_shipped_bccd_space_fits_the_bccd_config():
    from rcnn_plugin.apis.tune.study import check_space

    from conftest import REPO
    cfg = Config.fromfile(f'{REPO}/configs/bccd/'
                          'faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
    params = load_space(f'{REPO}/configs/_base_/tune/space_bccd.py')
    paths = check_space(cfg, params)
    assert [p.name for p in params] == ['lr', 'weight_decay',
                                        'anchor_scales', 'img_scale']
    assert len(paths['img_scale']) == 3  # train, val and test Resize


def test_a_key_the_trial_schedule_sets_is_refused():
    from rcnn_plugin.apis.tune.study import check_space
    cfg = Config(dict(train_cfg=dict(max_epochs=8, val_interval=1),
                      randomness=dict(seed=0),
                      optim_wrapper=dict(optimizer=dict(lr=0.01))))
    epochs = Param('epochs', dict(type='int', low=2, high=8,
                                  keys=['train_cfg.max_epochs']), 's.py')
    lr = Param('lr', dict(type='float', low=0.001, high=0.1,
                          keys=['optim_wrapper.optimizer.lr']), 's.py')
    assert set(check_space(cfg, [epochs, lr])) == {'epochs', 'lr'}
    with pytest.raises(SpaceError, match=r"'epochs': key 'train_cfg\."
                       r"max_epochs' is set by the trial schedule"):
        check_space(cfg, [epochs, lr], epochs_given=True)
    seed = Param('seed', dict(type='int', low=0, high=9,
                              keys=['randomness']), 's.py')
    with pytest.raises(SpaceError, match='randomness.seed'):
        check_space(cfg, [seed])


def test_the_tuned_config_leaves_out_the_cfg_options(tmp_path):
    from types import SimpleNamespace

    from rcnn_plugin.apis.tune.export import write_best_config
    from rcnn_plugin.apis.tune.study import check_space
    config = tmp_path / 'base.py'
    Config(CFG).dump(str(config))
    base = Config.fromfile(str(config))
    # --cfg-options train_pipeline.2.prob=0 (for the trials only)
    base.train_pipeline[2]['prob'] = 0.0
    scale = Param('scale', dict(
        type='categorical', choices=[(512, 384), (800, 600)],
        keys=['train_pipeline[type=Resize].scale']), 's.py')
    paths = check_space(base, [scale])
    best = SimpleNamespace(number=3, value=0.9, params={'scale': '(800, 600)'},
                           user_attrs={'best_epoch': 2})
    opts = SimpleNamespace(config=str(config), work_dir=str(tmp_path),
                           epochs=2, study_name='s', seed=0)
    target = write_best_config(best, [scale], base, paths, 'm', opts, 4)
    tuned = Config.fromfile(target)
    pipeline = tuned.train_pipeline
    assert tuple(pipeline[1]['scale']) == (800, 600)
    assert pipeline[2]['prob'] == 0.5  # the file's, not the cfg-option's
