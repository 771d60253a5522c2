"""tools/tune.py: an Optuna study of short trainings, resumable, and its
outputs (study file, trials.csv, plots, the best config)."""
import csv
import os.path as osp
import subprocess
import sys

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from conftest import run_tool

optuna = pytest.importorskip('optuna', reason='the tune extra is not '
                             'installed (pip install -e ".[tune]")')

from rcnn_plugin.apis.tune import main  # noqa: E402
from rcnn_plugin.apis.tune.cli import options, parse_args  # noqa: E402
from rcnn_plugin.apis.tune.study import (  # noqa: E402
    export_study,
    identity,
    load_base,
    open_study,
    pick_metric,
    run_study,
    sampler_seed,
)

SPACE = """
space = dict(
    lr=dict(type='float', low=0.0008, high=0.002, log=True,
            keys=['optim_wrapper.optimizer.lr']),
    scale=dict(type='categorical', choices=[(96, 96), (128, 128)],
               keys=['train_dataloader.dataset.pipeline[type=Resize].scale']),
)
"""
LR_ONLY = """
space = dict(lr=dict(type='categorical', choices=[1e6, 0.001],
                     keys=['optim_wrapper.optimizer.lr']))
"""


def _space(tmp_path, text=SPACE, name='space.py'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _args(config, space, work_dir, trials, *extra):
    return [config, '--space', space, '--trials', str(trials), '--epochs',
            '1', '--work-dir', str(work_dir), '--metric',
            'coco/bbox_mAP_50'] + list(extra)


def _rows(work_dir):
    with open(osp.join(work_dir, 'trials.csv')) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_study_writes_csv_plots_best_config_and_resumes(
        tiny_config, tmp_path, capsys):
    space, work = _space(tmp_path), tmp_path / 'tune'
    assert main(_args(tiny_config, space, work, 2)) == 0
    assert osp.isfile(work / 'study.db')
    rows = _rows(work)
    assert [r['state'] for r in rows] == ['COMPLETE', 'COMPLETE']
    assert all(r['epochs_reported'] == '1' for r in rows)
    for name in ('history', 'intermediate', 'slice'):
        assert osp.isfile(work / 'plots' / f'{name}.png')
    # The best config inherits the base and sets the best trial's values.
    best_path = work / 'tiny_faster-rcnn_tuned.py'
    text = best_path.read_text()
    assert "_base_ = ['../tiny_faster-rcnn.py']" in text
    best = max(rows, key=lambda r: float(r['coco/bbox_mAP_50']))
    cfg = Config.fromfile(str(best_path))
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(float(best['lr']))
    resize = [t for t in cfg.train_dataloader.dataset.pipeline
              if t.type == 'Resize'][0]
    assert repr(tuple(resize.scale)) == best['scale']
    assert cfg.train_cfg.max_epochs == Config.fromfile(
        tiny_config).train_cfg.max_epochs  # the trial schedule stays out
    assert not any(h.get('type') == 'OptunaPruningHook'
                   for h in cfg.get('custom_hooks', []))
    MODELS.build(cfg.model)
    # Resume: the same command with --trials 3 runs one more trial.
    assert main(_args(tiny_config, space, work, 3)) == 0
    assert len(_rows(work)) == 3
    assert osp.isdir(work / 'trials' / 'trial_002')
    assert 'study' in capsys.readouterr().out
    # Storage from another study (here: another space) is refused.
    other = _space(tmp_path, LR_ONLY, 'other.py')
    capsys.readouterr()
    assert main(_args(tiny_config, other, work, 3, '--study-name',
                      'tiny_faster-rcnn__space')) == 2
    err = capsys.readouterr().err
    assert 'for another search' in err and 'space' in err


def test_an_iteration_based_config_needs_its_val_interval(tiny_config,
                                                          tmp_path):
    from mmengine.config import Config as C
    cfg = C.fromfile(tiny_config)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=160,
                         val_interval=160)
    cfg.dump(str(tmp_path / 'iters.py'))
    args = [str(tmp_path / 'iters.py'), '--space',
            _space(tmp_path, LR_ONLY), '--trials', '1', '--work-dir',
            str(tmp_path / 'w'), '--metric', 'coco/bbox_mAP_50']
    opts = options(parse_args(args))
    with pytest.raises(ValueError, match=r'trains by iterations \(max_iters '
                       r'160\): give --val-interval .* for example 40'):
        load_base(opts)
    opts = options(parse_args(args + ['--val-interval', '40']))
    load_base(opts)
    assert opts.val_interval == 40
    opts = options(parse_args(_args(tiny_config, _space(tmp_path, LR_ONLY),
                                    tmp_path / 'w', 1)))
    load_base(opts)
    assert opts.val_interval == 1  # epochs: every epoch by default


def test_an_empty_val_cfg_is_mmengines_default_val_loop(tiny_config,
                                                        tmp_path):
    from mmengine.config import Config as C
    cfg = C.fromfile(tiny_config)
    cfg.val_cfg = dict()
    cfg.dump(str(tmp_path / 'empty_val_cfg.py'))
    opts = options(parse_args(_args(str(tmp_path / 'empty_val_cfg.py'),
                                    _space(tmp_path, LR_ONLY),
                                    tmp_path / 'w', 1)))
    assert load_base(opts).val_cfg == {}


def test_a_reopened_study_does_not_draw_its_first_values_again(
        tiny_config, tmp_path):
    args = parse_args(_args(tiny_config, _space(tmp_path), tmp_path / 'w',
                            4, '--sampler', 'random'))
    opts = options(args)
    base = load_base(opts)
    ident = identity(opts, base, *pick_metric(base, opts))
    dist = optuna.distributions.FloatDistribution(0.0008, 0.002, log=True)

    def draw(study, n):
        values = []
        for _ in range(n):
            trial = study.ask({'lr': dist})
            values.append(trial.params['lr'])
            study.tell(trial, 0.5)
        return values

    first = draw(open_study(opts, ident), 2)
    assert opts.sampler_seed == 0  # a new study: the given seed
    again = draw(open_study(opts, ident), 2)  # resumed, or a 2nd worker
    assert opts.sampler_seed != 0
    assert not set(first) & set(again)
    # A new study with the same seed draws the same values (seeded).
    opts.study_name = 'fresh'
    assert draw(open_study(opts, ident), 2) == first
    # ... but not into a work dir holding another study's trial folders.
    (tmp_path / 'w' / 'trials' / 'trial_000').mkdir(parents=True)
    opts.study_name = 'third'
    with pytest.raises(ValueError, match=r"holds 1 trial folder\(s\) of "
                       "another study than 'third'"):
        open_study(opts, ident)
    assert sampler_seed(0, 2, reopened=True) == sampler_seed(
        0, 2, reopened=True) != sampler_seed(0, 3, reopened=True)


@pytest.mark.slow
def test_a_diverging_trial_is_pruned_and_the_study_goes_on(
        tiny_config, tmp_path):
    args = parse_args(_args(tiny_config, _space(tmp_path, LR_ONLY),
                            tmp_path / 'w', 2, '--val-interval', '1'))
    opts = options(args)
    opts.epochs = 2
    base = load_base(opts)
    metric, direction = pick_metric(base, opts)
    study = open_study(opts, identity(opts, base, metric, direction))
    study.enqueue_trial({'lr': 1e6})
    study.enqueue_trial({'lr': 0.001})
    study, params, base, paths, metric, *_ = run_study(
        opts, log=lambda *a: None)
    states = [t.state.name for t in study.trials]
    assert states == ['PRUNED', 'COMPLETE']
    reason = study.trials[0].user_attrs['pruned_reason']
    assert 'nonfinite' in reason or 'no metrics' in reason


@pytest.mark.slow
def test_an_interrupted_trial_is_run_again(tiny_config, tmp_path):
    args = parse_args(_args(tiny_config, _space(tmp_path), tmp_path / 'w',
                            1))
    opts = options(args)
    base = load_base(opts)
    metric, direction = pick_metric(base, opts)
    study = open_study(opts, identity(opts, base, metric, direction))
    cut = study.ask({'lr': optuna.distributions.FloatDistribution(
        0.0008, 0.002, log=True)})
    cut.suggest_categorical('scale', ['(96, 96)', '(128, 128)'])
    dead = subprocess.run([sys.executable, '-c', 'import os; '
                           'print(os.getpid())'], capture_output=True,
                          text=True).stdout.strip()
    import socket
    cut.set_user_attr('host', socket.gethostname())
    cut.set_user_attr('pid', int(dead))
    study, *_ = run_study(opts, log=lambda *a: None)
    first, second = study.trials
    assert first.state.name == 'FAIL' and first.user_attrs['interrupted']
    assert second.state.name == 'COMPLETE'
    assert second.params == first.params


@pytest.mark.slow
def test_separate_processes_from_the_command_line(tiny_config, tmp_path):
    work = tmp_path / 'apart'
    out = run_tool(['tools/tune.py'] + _args(
        tiny_config, _space(tmp_path), work, 1, '--separate-processes'))
    assert '[tune] best: trial 0' in out
    assert osp.isfile(work / 'trials' / 'trial_000' / 'train_output.log')
    assert osp.isfile(work / 'trials' / 'trial_000' / 'trial_config.py')
    assert _rows(work)[0]['state'] == 'COMPLETE'


@pytest.mark.parametrize('space, message', [
    ("space = dict(m=dict(type='float', low=0, high=1, "
     "keys=['optim_wrapper.optimizer.momentm']))",
     "'optim_wrapper.optimizer.momentm' does not exist"),
    ('space = 3', 'must define space'),
])
def test_bad_space_fails_before_training(tiny_config, tmp_path, capsys,
                                         space, message):
    rc = main(_args(tiny_config, _space(tmp_path, space), tmp_path / 'w', 1))
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not osp.isdir(tmp_path / 'w' / 'trials')


def test_a_config_no_trial_could_be_scored_on_is_refused_first(
        tiny_config, tmp_path, capsys):
    """Before the study or a trial is stored: a validation that begins
    after the trial's last epoch, no val loop, --epochs with iterations."""
    from mmengine.config import Config as C
    space = _space(tmp_path, LR_ONLY)
    cases = [(dict(train_cfg=dict(val_begin=13)),
              'validates from train_cfg.val_begin 13, after the last epoch '
              'of a trial (1)'),
             (dict(val_cfg=None), 'has no val_cfg: a trial is scored'),
             (dict(val_evaluator=None), 'has no val_evaluator'),
             (dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=8,
                                  val_interval=4, _delete_=True)),
              '--epochs needs an epoch-based train_cfg')]
    for i, (change, message) in enumerate(cases):
        cfg = C.fromfile(tiny_config)
        cfg.merge_from_dict(change)
        path = str(tmp_path / f'case{i}.py')
        cfg.dump(path)
        work = tmp_path / f'w{i}'
        assert main(_args(path, space, work, 1)) == 2
        assert message in capsys.readouterr().err
        assert not osp.exists(work / 'study.db')


def test_the_direction_follows_the_save_best_rule(tiny_config, tmp_path):
    """A lower-is-better key (TIDE's dAP) is declared with rule='less',
    which the study follows; a contradicting --direction is a sentence."""
    from mmengine.config import Config as C
    cfg = C.fromfile(tiny_config)
    cfg.default_hooks.checkpoint.update(save_best='tide/dAP_Miss',
                                        rule='less')
    path = str(tmp_path / 'tide.py')
    cfg.dump(path)
    argv = _args(path, _space(tmp_path, LR_ONLY), tmp_path / 'w', 1)
    opts = options(parse_args(argv[:argv.index('--metric')]))
    assert pick_metric(load_base(opts), opts) == ('tide/dAP_Miss',
                                                  'minimize')
    opts.direction = 'maximize'
    with pytest.raises(ValueError, match="contradicts the config's "
                       "save_best rule 'less' for tide/dAP_Miss"):
        pick_metric(load_base(opts), opts)
    # one rule in a list serves every key, as in mmengine's CheckpointHook
    cfg.default_hooks.checkpoint.update(
        save_best=['tide/dAP_Miss', 'tide/dAP_Bkg'], rule=['less'])
    cfg.dump(path)
    opts.direction, opts.metric = None, 'tide/dAP_Bkg'
    assert pick_metric(load_base(opts), opts)[1] == 'minimize'


def test_a_storage_that_cannot_open_is_a_sentence(tiny_config, tmp_path,
                                                  capsys):
    storage = f'sqlite:///{tmp_path}/missing/study.db'
    argv = _args(tiny_config, _space(tmp_path), tmp_path / 'w', 1,
                 '--storage', storage)
    assert main(argv) == 2
    assert f'cannot open the study storage {storage}' in \
        capsys.readouterr().err


def test_a_pruned_trial_shows_no_value_in_the_csv(tmp_path, monkeypatch):
    """optuna stores a pruned trial's last report as its value: not a
    result beside the complete trials' best validations."""
    from types import SimpleNamespace
    study = optuna.create_study(direction='maximize')
    for value, state in ((0.9, 'PRUNED'), (0.5, 'COMPLETE')):
        trial = study.ask()
        trial.report(value, 1)
        if state == 'PRUNED':
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    opts = SimpleNamespace(work_dir=str(tmp_path))
    from rcnn_plugin.apis.tune import export
    monkeypatch.setattr(export, 'write_best_config', lambda *a: None)
    monkeypatch.setattr(export, '_plots', lambda *a: [])
    export_study(study, [], None, {}, 'm', opts, log=lambda *a: None)
    assert [r['m'] for r in _rows(tmp_path)] == ['', '0.5']


def test_no_metric_to_optimise_is_a_sentence(tiny_config, tmp_path, capsys):
    argv = _args(tiny_config, _space(tmp_path), tmp_path / 'w', 1)
    argv = argv[:argv.index('--metric')]
    assert main(argv) == 2
    assert 'say which validation metric' in capsys.readouterr().err


def test_the_same_error_three_times_stops_the_study(tiny_config, tmp_path,
                                                    monkeypatch):
    """A bug fails every trial the same way: the study stops after three,
    tracebacks kept, and those trials do not count towards --trials."""
    from rcnn_plugin.apis.tune import study as study_module
    from rcnn_plugin.apis.tune import trials

    def broken(cfg):
        raise AttributeError("'NoneType' object has no attribute 'x'")

    monkeypatch.setattr(trials, '_train_here', broken)
    args = parse_args(_args(tiny_config, _space(tmp_path), tmp_path / 'w',
                            5))
    lines = []
    study, *_, stopped = run_study(options(args), log=lines.append)
    assert [t.state.name for t in study.trials] == ['FAIL'] * 3
    assert study_module.counted(study) == 0 and stopped in lines
    assert any('stopped: trials 0, 1, 2 failed in a row with the same '
               'error (AttributeError)' in line for line in lines), lines
    log = tmp_path / 'w' / 'trials' / 'trial_002' / 'trial_error.log'
    assert 'Traceback' in log.read_text() and 'in broken' in log.read_text()
    assert 'traceback: ' in study.trials[0].user_attrs['fail_reason']


def test_different_errors_do_not_stop_the_study(tiny_config, tmp_path,
                                                monkeypatch):
    from rcnn_plugin.apis.tune import trials

    class OutOfMemoryError(RuntimeError):  # torch's, by name
        pass

    # different kinds, and running out of memory (value-dependent) 3 times
    errors = iter([KeyError('a'), ValueError('b')]
                  + [OutOfMemoryError('big batch')] * 3 + [KeyError('c')])

    def flaky(cfg):
        raise next(errors)

    monkeypatch.setattr(trials, '_train_here', flaky)
    args = parse_args(_args(tiny_config, _space(tmp_path), tmp_path / 'w',
                            6))
    study, *_, stopped = run_study(options(args), log=lambda *a: None)
    assert [t.state.name for t in study.trials] == ['FAIL'] * 6
    assert stopped is None


def test_a_separate_process_failure_is_kinded_by_its_traceback(tmp_path,
                                                               monkeypatch):
    from rcnn_plugin.apis.tune import trials

    class Done:
        returncode = 1

    def fake_run(cmd, cwd, stdout, stderr):
        stdout.write('Traceback (most recent call last):\n  File "x"\n'
                     'torch.OutOfMemoryError: CUDA out of memory\n')
        return Done()

    monkeypatch.setattr(trials.subprocess, 'run', fake_run)
    error = trials.run_trial(None, 'c.py', str(tmp_path), separate=True)
    assert error[0] == 'fail' and error[2] == 'OutOfMemoryError'
    assert 'exited with 1' in error[1]


def test_ctrl_c_is_a_sentence(tiny_config, tmp_path, capsys, monkeypatch):
    from rcnn_plugin.apis.tune import cli

    def interrupted(opts):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, 'run_study', interrupted)
    assert main(_args(tiny_config, _space(tmp_path), tmp_path / 'w', 1)) \
        == 130
    assert '[tune] interrupted: finished trials are kept' in \
        capsys.readouterr().err
