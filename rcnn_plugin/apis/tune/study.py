"""Run an Optuna study whose trials are short trainings of a config.

Each trial draws the space's parameters, sets them in a copy of the config
(plus the trial schedule: ``epochs``, validation every ``val_interval``
epochs, the study's seed), trains it in ``WORK_DIR/trials/trial_NNN`` and
reports every validation to the trial through
:class:`~rcnn_plugin.engine.hooks.OptunaPruningHook`, which stops a pruned
training. The trial's value is its best validation (the epoch
``save_best`` would keep). The study lives in an SQLite file, so a cut
study resumes where it stopped, and several ``tools/tune.py`` processes may
share it.
"""
import dataclasses
import glob
import hashlib
import math
import os
import os.path as osp
import socket
import time
from typing import Dict, Optional, Sequence

from mmengine.config import Config

from rcnn_plugin.engine.hooks.optuna_pruning_hook import import_optuna

from .base import load_base, pick_metric
from .export import export_study
from .space import Param, SpaceError, load_space, resolve_key
from .trials import (
    PRUNERS,
    StudyError,
    build_pruner,
    run_trial,
    sampler_seed,
    trial_config,
)

__all__ = ['PRUNERS', 'StudyError', 'TuneOptions', 'export_study',
           'run_study']


@dataclasses.dataclass
class TuneOptions:
    """What ``tools/tune.py`` was asked (see its ``--help``)."""
    config: str
    space: str
    trials: int
    work_dir: str
    storage: Optional[str] = None
    study_name: Optional[str] = None
    metric: Optional[str] = None
    direction: Optional[str] = None
    epochs: Optional[int] = None
    val_interval: Optional[int] = None  # 1 epoch; iterations: required
    seed: int = 0
    timeout: Optional[float] = None
    pruner: str = 'median'
    sampler: str = 'tpe'
    separate_processes: bool = False
    cfg_options: Optional[dict] = None
    sampler_seed: Optional[int] = None  # set when the study is opened


# What the trial schedule sets after the values (trials.trial_config): a
# searched key here would be overwritten, and trials.csv would report values
# that were never trained.
SCHEDULE_KEYS = (('train_cfg', 'val_interval'), ('randomness', 'seed'),
                 ('default_hooks', 'checkpoint', 'max_keep_ckpts'),
                 ('work_dir', ), ('experiment_name', ))


def check_space(cfg: Config, params: Sequence[Param],
                epochs_given: bool = False) -> Dict[str, list]:
    """Resolve every key of every parameter; raise naming the first bad,
    or one that the trial schedule sets (``--epochs``, ``--val-interval``,
    ``--seed``, the work dir, one checkpoint per trial)."""
    paths = {p.name: [resolve_key(cfg, k, p.new_key) for k in p.keys]
             for p in params}
    fixed = SCHEDULE_KEYS + ((('train_cfg', 'max_epochs'), )
                             if epochs_given else ())
    for p in params:
        for key, path in zip(p.keys, paths[p.name]):
            hit = next((f for f in fixed if tuple(path[:len(f)]) == f
                        or tuple(f[:len(path)]) == tuple(path)), None)
            if hit:
                raise SpaceError(
                    f'space parameter {p.name!r}: key {key!r} is set by '
                    f'the trial schedule ({".".join(hit)}: --epochs, '
                    '--val-interval, --seed or the trial folder), which '
                    'would overwrite the searched value; search it another '
                    'way or drop the flag')
    return paths


def identity(opts: TuneOptions, cfg: Config, metric: str,
             direction: str) -> dict:
    """What makes a stored study this one: config, space, metric, schedule.

    Two runs agree when they train the same merged config on the same
    space and trial schedule; a stored study that disagrees is refused.
    """
    with open(opts.space, 'rb') as f:
        space_sha = hashlib.sha1(f.read()).hexdigest()[:12]
    cfg_sha = hashlib.sha1(cfg.pretty_text.encode()).hexdigest()[:12]
    return dict(config=osp.abspath(opts.config), config_sha1=cfg_sha,
                space=osp.abspath(opts.space), space_sha1=space_sha,
                metric=metric, direction=direction, epochs=opts.epochs,
                val_interval=opts.val_interval, seed=opts.seed,
                # trials of --epochs compress the lr schedule (2026-12-07;
                # before, they kept the config's), milestones kept before
                # the last epoch (session 36): not comparable
                **({} if opts.epochs is None else dict(
                    schedule='scaled to --epochs; milestones before the '
                    'last epoch')))


def _sampler(opts: TuneOptions, seed: int):
    optuna = import_optuna()
    opts.sampler_seed = seed
    if opts.sampler == 'random':
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def open_study(opts: TuneOptions, ident: dict):
    """Create the study or reopen it after checking it is the same study.

    Raises:
        StudyError: The storage holds a study of this name made for another
            config, space, metric or schedule, or not by tools/tune.py.
    """
    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.makedirs(opts.work_dir, exist_ok=True)
    try:  # a missing folder, a bad URL: sqlalchemy's errors
        names = [s.study_name for s in optuna.get_all_study_summaries(
            opts.storage, include_best_trial=False)]
    except Exception as err:  # noqa: BLE001 (sqlalchemy's and optuna's)
        raise StudyError(f'cannot open the study storage {opts.storage}: '
                         f'{type(err).__name__}: {str(err)[:200]}') from err
    pruner = build_pruner(opts.pruner)
    if opts.study_name in names:
        study = optuna.load_study(study_name=opts.study_name,
                                  storage=opts.storage, pruner=pruner)
        study.sampler = _sampler(
            opts, sampler_seed(opts.seed, len(study.trials), reopened=True))
        stored = study.user_attrs.get('rcnn_tune')
        if stored is None:
            raise StudyError(
                f'{opts.storage} holds a study {opts.study_name!r} that '
                'tools/tune.py did not make; use another --study-name or '
                '--storage')
        diff = {k: (stored.get(k), v) for k, v in ident.items()
                if stored.get(k) != v}
        if diff:
            said = '; '.join(f'{k}: stored {a!r}, now {b!r}'
                             for k, (a, b) in diff.items())
            raise StudyError(
                f'{opts.storage} holds study {opts.study_name!r} for another '
                f'search ({said}); its trials would not compare with these. '
                'Use another --work-dir (or --study-name and --storage).')
        return study
    earlier = sorted(glob.glob(osp.join(opts.work_dir, 'trials', 'trial_*')))
    if earlier:  # trial folders are numbered per study: they would mix
        raise StudyError(
            f'{osp.join(opts.work_dir, "trials")} holds {len(earlier)} trial '
            f'folder(s) of another study than {opts.study_name!r} (or of a '
            'deleted study file); its trial_000 would be reused. Use another '
            '--work-dir, or move the old trials/ away')
    study = optuna.create_study(study_name=opts.study_name,
                                storage=opts.storage,
                                sampler=_sampler(opts, opts.seed),
                                pruner=pruner, direction=ident['direction'])
    study.set_user_attr('rcnn_tune', ident)
    return study


def recover_interrupted(study) -> int:
    """Fail this host's RUNNING trials whose process is gone; queue again.

    A study cut by Ctrl-C or a lost machine leaves its trial RUNNING. Its
    parameters are enqueued, so the resumed study trains them first.

    Returns:
        int: How many trials were recovered.
    """
    optuna = import_optuna()
    host = socket.gethostname()
    count = 0
    for t in study.get_trials(deepcopy=False,
                              states=(optuna.trial.TrialState.RUNNING, )):
        attrs = t.user_attrs
        if attrs.get('host') != host or _alive(attrs.get('pid')):
            continue
        optuna.trial.Trial(study, t._trial_id).set_user_attr(
            'interrupted', True)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
        count += 1
    return count


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return int(pid) != os.getpid()


# This many trials in a row failing with the same exception stop the study:
# a bug or a broken set-up, not a bad hyperparameter. Running out of memory
# (or a process killed, -9) can follow from the trial's values: no streak.
SAME_FAILURES_STOP = 3
_VALUE_DEPENDENT = ('OutOfMemoryError', 'MemoryError', 'exit status -9',
                    'exit status 137')


def counted(study) -> int:
    """Trials that count towards ``--trials``: all but interrupted ones and
    those of a failure streak that stopped the study."""
    optuna = import_optuna()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
    setup = set(study.user_attrs.get('setup_error_trials', []))
    return sum(1 for t in study.get_trials(deepcopy=False, states=done)
               if not t.user_attrs.get('interrupted')
               and t.number not in setup)


def trial_value(values: Dict[int, float], direction: str) -> Optional[float]:
    """The best of a trial's reported validations (None when none)."""
    finite = [v for v in values.values() if math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if direction == 'maximize' else min(finite)


def _stop_on_streak(study, streak: list) -> str:
    """Mark a streak of same-kind failures as not counted; the sentence
    saying why the study stops (the same command runs them again once
    fixed)."""
    study.set_user_attr('setup_error_trials', sorted(
        set(study.user_attrs.get('setup_error_trials', []))
        | {t.number for t, _ in streak}))
    numbers = ', '.join(str(t.number) for t, _ in streak)
    return (f'[tune] stopped: trials {numbers} failed in a row with the '
            f'same error ({streak[0][1]}): a bug or a broken set-up, not a '
            'bad hyperparameter. Their reasons are in trials.csv '
            '(fail_reason; the traceback in each trial folder, '
            'trial_error.log or train_output.log). Fix it and run the same '
            'command again: these trials do not count towards --trials')


def run_study(opts: TuneOptions, log=print):
    """Run trials until the study holds ``opts.trials`` or time runs out.

    Args:
        opts (TuneOptions): The options (``storage`` and ``study_name``
            filled in).
        log (callable): Where progress lines go.

    Returns:
        tuple: ``(study, params, base_cfg, paths, metric, direction,
        stopped)``; ``stopped`` is the sentence saying why a failure streak
        stopped the study, else None.
    """
    optuna = import_optuna()
    base = load_base(opts)
    params = load_space(opts.space)
    paths = check_space(base, params, opts.epochs is not None)
    metric, direction = pick_metric(base, opts)
    study = open_study(opts, identity(opts, base, metric, direction))
    recovered = recover_interrupted(study)
    if recovered:
        log(f'[tune] {recovered} interrupted trial(s) queued to run again')
    log(f'[tune] study {opts.study_name!r} in {opts.storage}: '
        f'{counted(study)} of {opts.trials} trials done; {direction} '
        f'{metric}; seed {opts.seed} (sampler seed {opts.sampler_seed}); '
        f'{opts.sampler} sampler, '
        f'{opts.pruner} pruner')
    start, streak, stopped = time.monotonic(), [], None
    while counted(study) < opts.trials:
        if opts.timeout and time.monotonic() - start > opts.timeout:
            log(f'[tune] time budget of {opts.timeout:.0f} s spent; '
                f'{counted(study)} trials done')
            break
        trial = study.ask()
        trial.set_user_attr('host', socket.gethostname())
        trial.set_user_attr('pid', os.getpid())
        trial.set_user_attr('sampler_seed', opts.sampler_seed)
        values = {p.name: p.suggest(trial) for p in params}
        work_dir = osp.join(opts.work_dir, 'trials',
                            f'trial_{trial.number:03d}')
        os.makedirs(work_dir, exist_ok=True)
        cfg = trial_config(base, params, paths, values, opts, metric,
                           trial._trial_id, work_dir)
        cfg_path = osp.join(work_dir, 'trial_config.py')
        cfg.dump(cfg_path)
        log(f'[tune] trial {trial.number}: {values}')
        tic = time.monotonic()
        error = run_trial(cfg, cfg_path, work_dir,
                          opts.separate_processes)
        frozen = study._storage.get_trial(trial._trial_id)
        reported = dict(frozen.intermediate_values)
        value = trial_value(reported, direction)
        trial.set_user_attr('train_s', round(time.monotonic() - tic, 1))
        if error is not None:
            trial.set_user_attr(f'{error[0]}_reason'
                                if error[0] == 'fail' else 'pruned_reason',
                                error[1][:2000])
            state = (optuna.trial.TrialState.PRUNED if error[0] == 'pruned'
                     else optuna.trial.TrialState.FAIL)
            study.tell(trial, state=state)
            log(f'[tune] trial {trial.number} {state.name.lower()}: '
                f'{error[1].splitlines()[0]}')
            if error[0] != 'fail' or error[2] in _VALUE_DEPENDENT:
                streak = []
            elif streak and streak[-1][1] != error[2]:
                streak = [(trial, error[2])]
            else:
                streak.append((trial, error[2]))
            if len(streak) == SAME_FAILURES_STOP:
                stopped = _stop_on_streak(study, streak)
                log(stopped)
                break
            continue
        streak = []
        if 'pruned_reason' in frozen.user_attrs:  # the hook says why
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            log(f'[tune] trial {trial.number} pruned: '
                f'{frozen.user_attrs.get("pruned_reason")}')
            continue
        if value is None:
            trial.set_user_attr('fail_reason', 'no validation ran: check '
                                '--val-interval and --epochs')
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log(f'[tune] trial {trial.number} failed: no validation ran')
            continue
        best_epoch = next(s for s, v in sorted(reported.items())
                          if v == value)
        trial.set_user_attr('best_epoch', best_epoch)
        study.tell(trial, value)
        log(f'[tune] trial {trial.number}: {metric} {value:.4f} '
            f'(epoch {best_epoch}), {time.monotonic() - tic:.0f} s')
    return study, params, base, paths, metric, direction, stopped


