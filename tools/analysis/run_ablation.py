"""Train configs one lever at a time and tabulate their validation metric.

Example (the BCCD levers of configs/bccd_ablation, seed 0)::

    python tools/analysis/run_ablation.py \\
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \\
        configs/bccd_ablation/*.py --seeds 0 \\
        --work-dir work_dirs/bccd_ablation --metric pascal_voc/mAP

Each run is ``tools/train.py CONFIG --work-dir WORK/<config>/seed_<s>
--cfg-options randomness.seed=<s> train_cfg.val_interval=1`` (an
iteration-based config keeps its ``val_interval``), printed before it
runs: recipes are chosen on the validation split. A finished run leaves
``result.json`` (validation history, last and best value, wall time) and
is skipped when the driver runs again; a cut run resumes. Both only if
made from the same config and options (the key in ``run.json``, as in the
other drivers); else that run fails with a sentence naming the folder.
``summary_<first config>_<hash of all configs>.md`` (one per set of
configs; its path is printed) gets a row per config: seeds, last and best
validation (mean and sample std over seeds), and the difference to the
first config (the reference) over the seeds both finished. A run that
fails (stopped by the training-health guard, say) is a row saying why;
the other runs go on, and the driver exits with status 1.
``--also M ...`` adds a column per further metric of the same validation
(last value, mean over seeds), e.g. ``coco/bbox_mAP_s``, read from the
logs (so it can be added after the runs).

A config that trains exactly as the reference (it changes only
``model.test_cfg``, ``tta_model`` or ``tta_pipeline``, e.g. soft-NMS or
test-time augmentation) is not trained again: each seed's reference
checkpoint is evaluated with it on the validation split (``tools/test.py``,
with ``--tta`` where it has a ``tta_model``), and its row says so. Where
validation steers training (``EarlyStoppingHook``, ``save_best``), every
config is trained.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List

from rcnn_plugin.utils.config_types import by_epoch
from rcnn_plugin.utils.run_record import (
    begin_run,
    config_key,
    file_sha256,
    reuse_run,
    val_history,
    write_run_record,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def final_values(records: List[Dict], metrics) -> Dict[str, float]:
    """The last record's value of each of ``metrics``; an error naming the
    metrics it lacks, with those it has."""
    last = records[-1] if records else {}
    lacking = [m for m in metrics if m not in last]
    if lacking:
        raise SystemExit(f'no metric {", ".join(lacking)} in the last '
                         f'validation; it has {", ".join(sorted(last))}')
    return {m: last[m] for m in metrics}


class RunFailed(RuntimeError):
    """A run of the driver that failed, said in a sentence."""


def _why(work_dir: str, returncode: int) -> str:
    """What stopped a training: the training-health finding that stopped
    it (``health.json``), else its exit status."""
    from rcnn_plugin.engine.hooks.health_file import read_findings
    try:
        stops = [x for x in read_findings(work_dir)
                 if x.get('action') == 'stop']
    except ValueError:  # a corrupt health.json: the exit status says it
        stops = []
    if stops:
        first = stops[-1]['message'].splitlines()[0]
        return f'{first} ({osp.join(work_dir, "health.json")})'
    return f'exit status {returncode}; its log is in {work_dir}'


def _scores(values: List[float], metric: str, epochs: bool) -> Dict:
    """A result's numbers for ``metric`` from its values in order."""
    best = max(values)
    return dict(metric=metric, history=values, last=values[-1], best=best,
                best_epoch=values.index(best) + 1 if epochs else None)


def _as_metric(result: Dict, records: List[Dict], metric: str,
               work_dir: str, epochs: bool = True,
               single: bool = False) -> Dict:
    """A finished result read back under another ``--metric``: its numbers
    again from the logged records (they were the stored metric's); the
    last record only for a ``single`` (test-time) result."""
    if result.get('metric') == metric:
        return result
    values = [r[metric] for r in records if metric in r]
    if not values:
        raise SystemExit(f'{work_dir}: no validation logged {metric!r} '
                         f"(its result.json is for {result.get('metric')!r})")
    return dict(result, **_scores(values[-1:] if single else values,
                                  metric, epochs))


def _keyed(check, *args, **kwargs):
    """``reuse_run`` / ``begin_run``, whose refusal of a folder made from
    another config is this run's failure (a table row), not the end of
    the driver."""
    try:
        return check(*args, **kwargs)
    except SystemExit as err:
        raise RunFailed(str(err)) from None


def run_one(config: str, seed: int, work_dir: str, metric: str,
            also=()) -> Dict:
    """Train one config with one seed (or read its finished result: only
    one made from the same config and options, as the other drivers)."""
    from mmengine.config import Config
    done = osp.join(work_dir, 'result.json')
    # an iteration-based config validating every iteration would run
    # hundreds of passes: it keeps its val_interval
    epochs = by_epoch(Config.fromfile(osp.join(REPO, config)))
    options = [f'randomness.seed={seed}'] + (
        ['train_cfg.val_interval=1'] if epochs else [])
    key = config_key(config, options, REPO)
    if _keyed(reuse_run, work_dir, done, key):
        with open(done) as f:
            result = json.load(f)
        history = val_history(work_dir, metric)
        result = _as_metric(result, history, metric, work_dir, epochs)
        result['also'] = final_values(history, also)
        return result
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
           '--cfg-options'] + options
    if _keyed(begin_run, work_dir, key, config=config, seed=seed):
        cmd.append('--resume')
    print('$', ' '.join(cmd[1:]), flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, check=False)
    if proc.returncode:
        raise RunFailed(f'training failed: {_why(work_dir, proc.returncode)}')
    history = val_history(work_dir, metric)
    if not history:
        raise SystemExit(f'{work_dir}: no validation logged {metric!r}')
    result = dict(config=config, seed=seed,
                  **_scores([h[metric] for h in history], metric, epochs),
                  wall_s=round(time.monotonic() - start, 1),
                  command=' '.join(cmd[1:]))
    with open(done, 'w') as f:
        json.dump(result, f, indent=2)
    result['also'] = final_values(history, also)
    return result


TEST_TIME_KEYS = ('tta_model', 'tta_pipeline')


def _training_view(cfg: dict) -> dict:
    """What training reads: the config less its test-time keys."""
    view = {k: v for k, v in cfg.items() if k not in TEST_TIME_KEYS}
    view['model'] = {k: v for k, v in cfg.get('model', {}).items()
                     if k != 'test_cfg'}
    return view


def _val_steers_training(cfg: dict) -> bool:
    from rcnn_plugin.utils.config_types import cfg_type_name
    hooks = [cfg_type_name(h) for h in cfg.get('custom_hooks') or []]
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    # mmengine's EarlyStoppingHook and ours (ResumableEarlyStoppingHook).
    return (any(h.endswith('EarlyStoppingHook') for h in hooks)
            or bool(ckpt.get('save_best')))


def trains_as(config: str, reference: str) -> bool:
    """Whether ``config`` trains exactly as ``reference`` (test-time only
    changes, and validation does not steer the training)."""
    from mmengine.config import Config
    cfg, ref = (Config.fromfile(c).to_dict() for c in (config, reference))
    return (not _val_steers_training(ref)
            and _training_view(cfg) == _training_view(ref))


def _test_records(work_dir: str) -> List[Dict]:
    """The metric records ``tools/test.py`` wrote under ``work_dir``."""
    records = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', '*.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def evaluate_one(config: str, seed: int, work_dir: str, metric: str,
                 ref_work_dir: str, also=()) -> Dict:
    """Evaluate the reference's checkpoint of ``seed`` with ``config`` on
    the validation split (or read the finished result)."""
    from mmengine.config import Config
    done = osp.join(work_dir, 'result.json')
    last = osp.join(ref_work_dir, 'last_checkpoint')
    ckpt = open(last).read().strip() if osp.isfile(last) else None
    # the config and the reference checkpoint it evaluates
    key = None if not (ckpt and osp.isfile(ckpt)) else config_key(
        config, [f'randomness.seed={seed}'], REPO) + file_sha256(ckpt)
    if osp.isfile(done) and key is None:
        print(f'# {work_dir}: done before; the reference checkpoint it '
              'evaluated is gone, so what it was made from is not checked')
    if osp.isfile(done) and (key is None or _keyed(reuse_run, work_dir,
                                                   done, key)):
        with open(done) as f:
            result = json.load(f)
        records = [r for r in _test_records(work_dir) if metric in r]
        result = _as_metric(result, records, metric, work_dir, False, True)
        result['also'] = final_values(records, also)
        return result
    if key is None or not osp.isfile(osp.join(ref_work_dir,
                                              'result.json')):
        raise RunFailed(f'no finished reference training to evaluate in '
                        f'{ref_work_dir} (it failed or did not run)')
    os.makedirs(work_dir, exist_ok=True)
    derived = osp.join(work_dir, 'val_as_test.py')
    with open(derived, 'w') as f:
        f.write(f"_base_ = '{osp.abspath(config)}'\n"
                'test_dataloader = {{_base_.val_dataloader}}\n'
                'test_evaluator = {{_base_.val_evaluator}}\n')
    cmd = [sys.executable, 'tools/test.py', derived, ckpt, '--work-dir',
           work_dir, '--cfg-options', f'randomness.seed={seed}']
    if 'tta_model' in Config.fromfile(config):
        cmd.append('--tta')
    print('$', ' '.join(cmd[1:]), flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, check=False)
    if proc.returncode:
        raise RunFailed(f'tools/test.py exited with status {proc.returncode}'
                        f'; its output is above, its logs in {work_dir}')
    records = [r for r in _test_records(work_dir) if metric in r]
    values = [r[metric] for r in records]
    if not values:
        raise SystemExit(f'{work_dir}: the test run logged no {metric!r}')
    result = dict(config=config, seed=seed,
                  **_scores(values[-1:], metric, False),
                  checkpoint=ckpt, test_time_only=True,
                  wall_s=round(time.monotonic() - start, 1),
                  command=' '.join(cmd[1:]))
    with open(done, 'w') as f:
        json.dump(result, f, indent=2)
    write_run_record(osp.join(work_dir, 'run.json'), key, config=config,
                     seed=seed, checkpoint=ckpt)
    result['also'] = final_values(records, also)
    return result


def summary_path(work_dir: str, configs: List[str]) -> str:
    """``summary_<first config>_<8 hex of all config names>.md``."""
    names = [osp.splitext(osp.basename(c))[0] for c in configs]
    digest = hashlib.sha1('\n'.join(names).encode()).hexdigest()[:8]
    return osp.join(work_dir, f'summary_{names[0]}_{digest}.md')


def _mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.3f}'
    return f'{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}'


def table(results: Dict[str, List[Dict]], metric: str,
          also=()) -> List[str]:
    """Markdown rows: config, seeds, last / best validation, vs the first,
    then the last value of each ``also`` metric (mean over seeds)."""
    lines = [f'| config | seeds | last val {metric} | best val (epoch) | '
             'last vs first config | wall (min, mean) |'
             + ''.join(f' last {m} |' for m in also),
             '|---|---|---|---|---|---|' + '---|' * len(also)]
    ref, first = None, True  # the reference's last value by seed
    for name, all_runs in results.items():
        runs = [r for r in all_runs if 'failed' not in r]
        failed = [r for r in all_runs if 'failed' in r]
        if failed:
            name += ' (' + '; '.join(f'seed {r["seed"]} failed: '
                                     f'{r["failed"]}' for r in failed) + ')'
        if not runs:
            lines.append(f'| {name} | '
                         f'{", ".join(str(r["seed"]) for r in failed)} | '
                         'failed | - | - | - |' + ' - |' * len(also))
            first = False
            continue
        last = [r['last'] for r in runs]
        ref = {r['seed']: r['last'] for r in runs} if first else ref
        first = False
        best = ', '.join(f'{r["best"]:.3f}' + (
            f' ({r["best_epoch"]})' if r.get('best_epoch') else '')
            for r in runs)
        if any(r.get('test_time_only') for r in runs):
            name += " (test-time only: the reference's checkpoints)"
            best = '-'
        wall = statistics.mean(r['wall_s'] for r in runs) / 60
        lines.append(
            f'| {name} | {", ".join(str(r["seed"]) for r in runs)} | '
            f'{_mean_std(last)} | {best} | '
            + _versus(runs, ref) + f' | {wall:.1f} |'
            + ''.join(f' {_also_cell([r["also"][m] for r in runs])} |'
                      for m in also))
    return lines


def _versus(runs: List[Dict], ref) -> str:
    """Mean difference to the reference over the seeds both finished
    (those seeds named where they are not all of this row's)."""
    shared = [r for r in runs if ref and r['seed'] in ref]
    if not shared:
        return '-'
    diff = statistics.mean(r['last'] - ref[r['seed']] for r in shared)
    if len(shared) == len(runs):
        return f'{diff:+.3f}'
    return f'{diff:+.3f} (seeds {", ".join(str(r["seed"]) for r in shared)})'


def _also_cell(values: List[float]) -> str:
    """Mean over seeds; '-' where COCO logged -1 (no objects of the kind)."""
    if any(v < 0 for v in values):
        return '-'
    return f'{statistics.mean(values):.3f}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+',
                        help='configs; the first is the reference')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--metric', default='pascal_voc/mAP')
    parser.add_argument('--also', nargs='+', default=[], metavar='METRIC',
                        help='further metrics of the same validation to '
                        'tabulate (last epoch), e.g. coco/bbox_mAP_s')
    args = parser.parse_args(argv)
    missing = [c for c in args.configs if not osp.isfile(c)]
    if missing:
        print(f'error: no config {missing[0]}', file=sys.stderr)
        return 2
    # one meaning for a relative path: here, in the keys and in the
    # trainings (which run in the repository)
    args.configs = [osp.abspath(c) for c in args.configs]
    from rcnn_plugin.utils.fileio import atomic_open
    results: Dict[str, List[Dict]] = {}
    reference = args.configs[0]
    ref_name = osp.splitext(osp.basename(reference))[0]
    for config in args.configs:  # a mistyped --also, before any training
        for seed in args.seeds:
            name = osp.splitext(osp.basename(config))[0]
            history = val_history(
                osp.join(args.work_dir, name, f'seed_{seed}'), args.metric)
            if history:
                final_values(history, args.also)
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        test_time = config != reference and trains_as(config, reference)
        for seed in args.seeds:
            work = osp.join(args.work_dir, name, f'seed_{seed}')
            try:
                if test_time:
                    ref_work = osp.join(args.work_dir, ref_name,
                                        f'seed_{seed}')
                    res = evaluate_one(config, seed, work, args.metric,
                                       ref_work, args.also)
                else:
                    res = run_one(config, seed, work, args.metric,
                                  args.also)
            except RunFailed as err:  # tabulated; the other runs go on
                print(f'error: {name} seed {seed}: {err}', file=sys.stderr)
                res = dict(seed=seed, failed=str(err))
            results.setdefault(name, []).append(res)
            summary = summary_path(args.work_dir, args.configs)
            with atomic_open(summary) as f:
                f.write('\n'.join(table(results, args.metric, args.also))
                        + '\n')
    print(open(summary).read())
    print(f'written to {summary}')
    failed = sum('failed' in r for runs in results.values() for r in runs)
    if failed:
        print(f'error: {failed} run(s) failed (their rows say why); run the '
              'same command again to retry them', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
