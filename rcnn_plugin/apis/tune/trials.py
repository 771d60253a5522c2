"""One trial: its config, its training here or in a process of its own."""
import hashlib
import os
import os.path as osp
import re
import subprocess
import sys
import time
import traceback
from typing import Any, Dict, Optional, Sequence, Tuple

from mmengine.config import Config

from rcnn_plugin.engine.hooks.optuna_pruning_hook import import_optuna

from ...utils.config_types import by_epoch, cfg_type_name
from .space import Param, set_key

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
PRUNERS = {
    'median': dict(type='MedianPruner', n_startup_trials=2,
                   n_warmup_steps=1),
    'hyperband': dict(type='HyperbandPruner'),
    'none': None,
}


class StudyError(ValueError):
    """A study that cannot run as asked, said in a sentence."""


def sampler_seed(seed: int, num_trials: int, reopened: bool) -> int:
    """The sampler's seed: ``seed`` for a new study; for a reopened one a
    seed of its own, mixed from ``seed``, the trials it holds and this
    process.

    A sampler seeded with ``seed`` again would restart the stream the study
    began with: TPE's first draws are random, and a re-run interrupted
    trial (its values fixed) draws nothing, so a resumed study, or a second
    process sharing it, trained trial 0's values again, then trial 1's.
    """
    if not reopened:
        return seed
    mixed = hashlib.sha1(f'{seed}/{num_trials}/{os.getpid()}'.encode())
    return int(mixed.hexdigest()[:8], 16)


def build_pruner(name: str):
    """An Optuna pruner from its ``--pruner`` name."""
    optuna = import_optuna()
    spec = PRUNERS[name]
    if spec is None:
        return optuna.pruners.NopPruner()
    args = dict(spec)
    return getattr(optuna.pruners, args.pop('type'))(**args)


# mmengine's "until the end" (INF) and other sentinels are not scaled.
_SENTINEL = 10**8


def scale_schedule(cfg: Config, factor: float,
                   max_epochs: Optional[int] = None) -> None:
    """Compress (or stretch) the lr schedule by ``factor`` in place, as a
    trial of ``--epochs`` trains a shorter run of the config.

    ``begin``, ``end``, ``milestones``, ``T_max``, ``step_size``,
    ``total_steps`` and ``periods`` of every ``param_scheduler`` (epochs
    or iterations alike, so a warm-up keeps its share of the run) are
    multiplied and rounded, each scheduler keeping at least one step.
    Without this a 4-epoch trial of an 8-epoch config spent half its
    iterations warming up and never reached the decay, so it scored
    un-annealed weights.

    With ``max_epochs`` (the trial's), an epoch-based ``begin`` or
    milestone that came before the config's last epoch stays before the
    trial's: rounded onto it (1.5 -> 2 of 2), a decay would never happen.

    Args:
        cfg (Config): The trial's config.
        factor (float): Trial epochs over the config's.
        max_epochs (int, optional): The trial's epochs. Defaults to None.
    """
    if factor == 1:
        return

    def scaled(value, low, last=None):
        if not isinstance(value, (int, float)) or value >= _SENTINEL:
            return value
        new = max(low, int(round(value * factor)))
        if last is not None and value < last / factor:
            new = min(new, max(low, last - 1))  # before the last epoch
        return new

    schedulers = cfg.get('param_scheduler') or []
    for sched in ([schedulers] if isinstance(schedulers, dict)
                  else schedulers):
        last = max_epochs if sched.get('by_epoch', True) else None
        for key, low in (('begin', 0), ('end', 1), ('T_max', 1),
                         ('step_size', 1), ('total_steps', 1)):
            if key in sched:
                sched[key] = scaled(sched[key], low,
                                    last if key == 'begin' else None)
        if 'milestones' in sched:
            sched['milestones'] = [scaled(m, 1, last)
                                   for m in sched['milestones']]
        if 'periods' in sched:
            sched['periods'] = [scaled(m, 1) for m in sched['periods']]
        if 'end' in sched and sched['end'] <= sched.get('begin', 0):
            sched['end'] = sched.get('begin', 0) + 1  # mmengine refuses


def trial_config(base: Config, params: Sequence[Param],
                 paths: Dict[str, list], values: Dict[str, Any],
                 opts, metric: str, trial_id: int,
                 work_dir: str) -> Config:
    """The config one trial trains: the base, the values, the schedule."""
    cfg = Config(base.to_dict(), filename=base.filename)
    for p in params:
        for path in paths[p.name]:
            set_key(cfg, path, values[p.name])
    if opts.epochs is not None:
        if not by_epoch(cfg):
            raise StudyError('--epochs needs an epoch-based train_cfg; '
                             f'the config has {cfg.train_cfg.get("type")}')
        scale_schedule(cfg, opts.epochs / cfg.train_cfg.max_epochs,
                       opts.epochs)
        cfg.train_cfg.max_epochs = opts.epochs
    cfg.train_cfg.val_interval = opts.val_interval
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=opts.seed)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{osp.basename(work_dir)}_{int(time.time())}'
    hooks = [h for h in cfg.get('custom_hooks') or []
             if cfg_type_name(h) != 'OptunaPruningHook']
    hooks.append(dict(type='OptunaPruningHook', storage=opts.storage,
                      study_name=opts.study_name, trial_id=trial_id,
                      metric=metric, pruner=PRUNERS[opts.pruner]))
    cfg.custom_hooks = hooks
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if ckpt is not None:  # trials are many: keep one checkpoint each
        ckpt['max_keep_ckpts'] = 1
    return cfg


def _train_here(cfg: Config) -> None:
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from rcnn_plugin.utils import prepare_offline
    prepare_offline(cfg)
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg
              else RUNNERS.build(cfg))
    runner.train()


def _train_apart(cfg_path: str, work_dir: str) -> None:
    log = osp.join(work_dir, 'train_output.log')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg_path,
           '--work-dir', work_dir]
    with open(log, 'w') as f:
        rc = subprocess.run(cmd, cwd=REPO, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    if rc:
        with open(log) as f:
            lines = f.readlines()
        tail = ''.join(lines[-15:])
        raised = [m.group(1) for m in map(_RAISED.match, lines) if m]
        raise TrialProcessError(
            f'tools/train.py exited with {rc}; the end of {log}:\n{tail}',
            kind=raised[-1] if raised else f'exit status {rc}')


# The last line of a Python traceback: ``torch.OutOfMemoryError: ...``.
_RAISED = re.compile(r'^(?:[\w.]+\.)?(\w+(?:Error|Exception|Interrupt))\b')


class TrialProcessError(RuntimeError):
    """A trial's separate training process failed; ``kind`` is the
    exception its traceback ended with, else its exit status."""

    def __init__(self, message: str, kind: str = '') -> None:
        super().__init__(message)
        self.kind = kind


def _health_stop(work_dir: str) -> Optional[str]:
    """The TrainingHealthHook finding that stopped a training, if any."""
    from rcnn_plugin.engine.hooks.health_file import read_findings
    stops = [f for f in read_findings(work_dir) if f.get('action') == 'stop']
    return stops[-1]['message'] if stops else None


def run_trial(cfg: Config, cfg_path: str, work_dir: str,
              separate: bool) -> Optional[Tuple[str, str, str]]:
    """Train one trial; say how it ended when it did not end normally.

    Returns:
        tuple | None: None after a normal end (finished or stopped by the
        pruner), ``('pruned', why, kind)`` when the training-health guard
        stopped it (divergence), ``('fail', why, kind)`` for any other
        error; ``kind`` is the exception's class name. An error raised in
        this process leaves its traceback in ``trial_error.log``.
    """
    from rcnn_plugin.engine.hooks import TrainingHealthError
    try:
        if separate:
            _train_apart(cfg_path, work_dir)
        else:
            _train_here(cfg)
    except TrainingHealthError as exc:
        return ('pruned', f'training stopped: {str(exc).splitlines()[0]}',
                type(exc).__name__)
    except TrialProcessError as exc:
        stop = _health_stop(work_dir)
        return (('pruned', f'training stopped: {stop}', 'TrainingHealth')
                if stop else ('fail', str(exc), exc.kind))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one bad trial does not end the study
        log = osp.join(work_dir, 'trial_error.log')
        with open(log, 'w') as f:
            f.write(traceback.format_exc())
        return ('fail', f'{type(exc).__name__}: {exc} (traceback: {log})',
                type(exc).__name__)
    return None
