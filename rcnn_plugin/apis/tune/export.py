"""What a study leaves: trials.csv, plots/ and the best config."""
import csv
import os
import os.path as osp
import warnings
from typing import Any, Dict, List

from mmengine.config import Config

from rcnn_plugin.engine.hooks.optuna_pruning_hook import import_optuna
from rcnn_plugin.utils.config_types import lists_for_tuples
from rcnn_plugin.utils.fileio import atomic_open

from .space import Param, SpaceError, best_overrides, flat_values, set_key


def export_study(study, params: List[Param], base: Config,
                 paths: Dict[str, list], metric: str, opts,
                 log=print) -> dict:
    """Write trials.csv, plots/ and the best config into the work dir.

    Returns:
        dict: Paths written (``csv``, ``plots``, ``best_config``) and the
        best trial (``best``; None when no trial completed).
    """
    optuna = import_optuna()
    trials = study.get_trials(deepcopy=False)
    out = dict(csv=osp.join(opts.work_dir, 'trials.csv'), plots=[],
               best_config=None, best=None)
    names = [p.name for p in params]
    with atomic_open(out['csv'], newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['number', 'state', metric, 'best_epoch',
                         'epochs_reported', 'train_s'] + names + ['reason'])
        for t in trials:
            shown = flat_values(params, t.params)
            # a pruned trial's value is its last report (optuna's tell),
            # not its best: left empty, as the others without a result
            done = t.state == optuna.trial.TrialState.COMPLETE
            writer.writerow(
                [t.number, t.state.name, '' if t.value is None or not done
                 else f'{t.value:.6g}', t.user_attrs.get('best_epoch', ''),
                 len(t.intermediate_values), t.user_attrs.get('train_s', '')]
                + [repr(shown[n]) if n in shown else '' for n in names]
                + [t.user_attrs.get('pruned_reason')
                   or t.user_attrs.get('fail_reason')
                   or ('interrupted' if t.user_attrs.get('interrupted')
                       else '')])
    out['plots'] = _plots(study, opts.work_dir, log)
    complete = [t for t in trials
                if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        log('[tune] no trial completed: no best config written')
        return out
    best = study.best_trial
    out['best'] = best
    out['best_config'] = write_best_config(best, params, base, paths,
                                           metric, opts, len(trials), log)
    return out


def _set_values(cfg: Config, params: List[Param], paths: Dict[str, list],
                values: Dict[str, Any]) -> None:
    for p in params:
        for path in paths[p.name]:
            set_key(cfg, path, values[p.name])


def write_best_config(best, params: List[Param], base: Config,
                      paths: Dict[str, list], metric: str,
                      opts, n_trials: int, log=print) -> str:
    """Write the best trial as a config that inherits ``opts.config``.

    Only the searched keys are written (the trial schedule and
    ``--cfg-options`` are not): train it with tools/train.py as any config.
    """
    values = flat_values(params, best.params)
    # From the config file, not ``base``: a searched list (a pipeline) is
    # written whole, and base's copy carries the --cfg-options.
    cfg = Config.fromfile(opts.config)
    try:
        _set_values(cfg, params, paths, values)
    except (KeyError, IndexError, TypeError):  # --cfg-options reshaped it
        log('[tune] the searched keys exist only with --cfg-options, so '
            'the best config carries them where a searched list holds them')
        cfg = Config(base.to_dict(), filename=base.filename)
        _set_values(cfg, params, paths, values)
    overrides = best_overrides(cfg, [path for p in params
                                     for path in paths[p.name]])
    stem = osp.splitext(osp.basename(opts.config))[0]
    target = osp.join(opts.work_dir, f'{stem}_tuned.py')
    rel = osp.relpath(osp.abspath(opts.config),
                      osp.dirname(osp.abspath(target)))
    schedule = (f'{opts.epochs} epochs' if opts.epochs else
                'the config\'s schedule')
    header = [
        f'# Written by tools/tune.py: study {opts.study_name!r}, trial '
        f'{best.number} of {n_trials}',
        f'# {metric} {best.value:.4f} on validation (epoch '
        f'{best.user_attrs.get("best_epoch")}) in a trial of {schedule}, '
        f'seed {opts.seed}',
        '# ' + ', '.join(f'{k}={v!r}' for k, v in values.items()),
        f"_base_ = ['{rel}']",
        '',
    ]
    body = Config(overrides).pretty_text if overrides else ''
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with atomic_open(target) as f:
            f.write('\n'.join(header) + body + '\n')
    # Check it reads back to the values the trial trained.
    check = Config.fromfile(target)
    for p in params:
        for path in paths[p.name]:
            node = check
            for seg in path:
                node = node[seg]
            if lists_for_tuples(node) != lists_for_tuples(values[p.name]):
                raise SpaceError(f'{target}: {path} reads back as {node!r}, '
                                 f'not {values[p.name]!r}')
    return target


def _plots(study, work_dir: str, log) -> List[str]:
    """History, intermediate values, slices and importances as PNGs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    optuna = import_optuna()
    vis = optuna.visualization.matplotlib
    folder = osp.join(work_dir, 'plots')
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, fn in (('history', vis.plot_optimization_history),
                     ('intermediate', vis.plot_intermediate_values),
                     ('slice', vis.plot_slice),
                     ('importances', vis.plot_param_importances)):
        path = osp.join(folder, f'{name}.png')
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                ax = fn(study)
            fig = (ax.flat[0] if hasattr(ax, 'flat') else ax).figure
            fig.savefig(path, dpi=100, bbox_inches='tight')
            plt.close(fig)
            written.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            log(f'[tune] no {name} plot: {exc}')
    return written
