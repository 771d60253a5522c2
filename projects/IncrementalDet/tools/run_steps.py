"""Train and test a sequence of incremental steps (issue 19: 1+1+1 ...).

Step 1 trains the base model; each later step's ``model.teacher_ckpt`` is
the previous step's final checkpoint, and its classes must continue the
sequence (``old_classes`` = every class so far). Each run is tested on its
test split with :class:`IncrementalVOCMetric` (the old / new / all AP50,
and the forgetting against the teacher's AP50), and the aggregate table
(``results.md`` and ``results.json``: AP50s, forgetting, training time and
peak memory per run) is rewritten after each run. The whole sequence is
checked (configs, classes, test splits) before anything trains.

Resumable: a run whose ``final.pth`` and ``result.json`` exist is skipped,
unless its teacher changed since it trained (``train.json`` records the
teacher checkpoint's path, size and modification time when training
starts; another one means it is trained again from the start); a trained
run whose test did not finish is only tested; an interrupted training
resumes from its last checkpoint. Deleting a finished run's ``final.pth``
trains it again from the start, and so every later run that learns from
it. The seed and a hash of the training config (``config_stamp``) are
recorded when training starts too, so a run begun with another seed, or
another config (file, ``--cfg-options`` or ``--overlay``), is refused.
The spec format is in ``projects/IncrementalDet/incremental_det/sequence.py``.

Example (BCCD 1+1+1, from the repository root)::

    PYTHONPATH=. .venv/bin/python projects/IncrementalDet/tools/run_steps.py \\
        projects/IncrementalDet/configs/bccd-1-1-1_sequence.yml \\
        --seed 0 --bounds
"""
import argparse
import gc
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
import time
import uuid
from typing import Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
if REPO not in sys.path:  # the project imports as projects.IncrementalDet
    sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmdet.utils import setup_cache_size_limit_of_dynamo  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from projects.IncrementalDet.incremental_det.sequence import (  # noqa: E402
    Run,
    load_spec,
    plan_runs,
)
from projects.IncrementalDet.incremental_det.sequence_results import (  # noqa
    format_table,
    incremental_evaluator,
    parse_metrics,
    read_result,
    write_aggregate,
    write_json,
)
from rcnn_plugin.utils import (  # noqa: E402
    load_config,
    prepare_offline,
    seed_message,
)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description='Train and test a sequence of incremental steps')
    parser.add_argument('spec', help='sequence spec (.yml / .json / .py): '
                        'the step configs in order')
    parser.add_argument('--work-dir', help='folder of the runs (default: '
                        'the spec\'s work_dir, else work_dirs/incremental/'
                        '<spec name>)')
    parser.add_argument('--seed', type=int, default=0,
                        help='randomness.seed of every run (default 0)')
    parser.add_argument('--bounds', action='store_true',
                        help='also the lower (plain fine-tuning) and upper '
                        '(joint training) runs the spec gives')
    parser.add_argument('--dry-run', action='store_true',
                        help='check the sequence and print the runs only')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in every run\'s config, '
                        'key=value')
    parser.add_argument('--overlay', nargs='+', default=[],
                        help='config snippets merged over every config')
    return parser.parse_args(argv)


def run_config(run: Run, args: argparse.Namespace,
               reference) -> Config:
    """The run's config: seed, work dir, teacher and test evaluator."""
    cfg = load_config(argparse.Namespace(
        config=run.config, work_dir=run.run_dir, launcher='none',
        cfg_options=args.cfg_options, overlay=args.overlay, local_rank=0))
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=args.seed)
    # Unique per run: mmengine names its logger and visualizer after it.
    cfg.experiment_name = f'{run.name}-{uuid.uuid4().hex[:8]}'
    if run.teacher is not None:
        cfg.model.teacher_ckpt = run.teacher
    cfg.test_evaluator = incremental_evaluator(cfg, run.old_classes,
                                               reference)
    return cfg


def reset_peak_memory() -> bool:
    """Reset the peaks; False if the RSS peak (VmHWM) cannot be reset."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # Linux >= 4.0: VmHWM := current RSS
        return True
    except OSError:
        return False


def peak_memory(rss_reset: bool) -> dict:
    """Peak RSS since the reset (None if not reset) and peak GPU memory."""
    out = dict(peak_rss_mib=None, peak_gpu_mib=None)
    if torch.cuda.is_available():
        out['peak_gpu_mib'] = torch.cuda.max_memory_allocated() / 2**20
    if rss_reset:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    out['peak_rss_mib'] = int(line.split()[1]) / 1024
    return out


def link_final(run: Run) -> None:
    """``final.pth``: a link to the last checkpoint the training saved."""
    last = osp.join(run.run_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise RuntimeError(f'{run.name}: the training saved no checkpoint '
                           f'in {run.run_dir}; keep default_hooks.'
                           f'checkpoint in {run.config}')
    with open(last) as f:
        target = f.read().strip()
    if not osp.isabs(target):
        target = osp.join(run.run_dir, target)
    if osp.lexists(run.checkpoint):
        os.remove(run.checkpoint)
    try:
        os.symlink(osp.relpath(target, osp.dirname(run.checkpoint)),
                   run.checkpoint)
    except OSError:  # no links on this file system
        shutil.copyfile(target, run.checkpoint)


def teacher_stamp(run: Run) -> Optional[dict]:
    """The teacher checkpoint as it is now: its real path, size and
    modification time (None without a teacher or teacher file)."""
    if run.teacher is None or not osp.isfile(run.teacher):
        return None
    path = osp.realpath(run.teacher)
    stat = os.stat(path)
    return dict(path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns)


# What a run trains with: an option that changes them makes another run.
TRAINED_WITH = ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'randomness')


def config_stamp(cfg: Config) -> str:
    """A hash of what the run trains with (``TRAINED_WITH``; the model's
    test_cfg left out, so a run can be tested again with other test
    settings, and the teacher by its real path)."""
    parts = Config({k: cfg.get(k) for k in TRAINED_WITH}).to_dict()
    model = parts.get('model') or {}
    model.pop('test_cfg', None)
    if model.get('teacher_ckpt'):
        model['teacher_ckpt'] = osp.realpath(model['teacher_ckpt'])
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_and_test(run: Run, cfg: Config, train: bool, seed: int,
                   stamp: Optional[str] = None) -> dict:
    """Train (unless only testing) and test one run; write its result.
    ``stamp`` is :func:`config_stamp` of the config before
    ``prepare_offline`` (which changes the model's init when resuming)."""
    os.makedirs(run.run_dir, exist_ok=True)
    info_file = osp.join(run.run_dir, 'train.json')
    rss_reset = reset_peak_memory()
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    print(seed_message(cfg, runner.seed), flush=True)
    if train:
        # Before training: an interrupted run keeps its seed and teacher.
        started = dict(seed=seed, teacher_stamp=teacher_stamp(run),
                       config_stamp=stamp or config_stamp(cfg))
        write_json(info_file, started)
        start = time.perf_counter()
        runner.train()
        info = dict(train_time_s=time.perf_counter() - start,
                    resumed=bool(cfg.get('resume')),
                    **started, **peak_memory(rss_reset))
        link_final(run)
        # After the link: ``train_time_s`` in train.json means "final.pth
        # was made" (see stale_reason).
        write_json(info_file, info)
    else:
        info = read_json(info_file)
    metrics = parse_metrics(runner.test())
    record = dict(
        step=run.step, variant=run.variant, config=run.config,
        checkpoint=run.checkpoint, teacher=run.teacher,
        old_classes=list(run.old_classes),
        new_classes=list(run.new_classes),
        reference_old_ap50=cfg.test_evaluator['reference_old_ap50'],
        metrics=metrics, **info)
    write_json(run.result_file, record)
    del runner
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return record


def read_json(path: str) -> dict:
    """A JSON file, or ``{}`` if it does not exist."""
    if not osp.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def check_seed(run: Run, seed: int) -> None:
    """A run done with another seed is not mixed into this sequence."""
    done = read_json(osp.join(run.run_dir, 'train.json')).get('seed')
    if done is not None and done != seed:
        raise SystemExit(f'[run_steps] {run.run_dir} was trained with seed '
                         f'{done}, not --seed {seed}: use another --work-dir '
                         f'or --seed {done}')


def check_config(run: Run, cfg: Config) -> None:
    """A run trained (or begun) with another config is neither skipped
    nor resumed under this one."""
    done = read_json(osp.join(run.run_dir, 'train.json')).get(
        'config_stamp')
    if done is not None and done != config_stamp(cfg):
        raise SystemExit(
            f'[run_steps] {run.run_dir} was trained with another config '
            '(its model, data, schedule or optimiser differ: the config '
            'file, --cfg-options or --overlay changed): use another '
            f'--work-dir, or delete {run.run_dir} to train it again')


def stale_reason(run: Run, retrained: set) -> Optional[str]:
    """Why the run must be trained again from the start, or None: its
    teacher changed, or its ``final.pth`` was deleted after the training
    had finished (an interrupted training has none yet: it is resumed)."""
    info = read_json(osp.join(run.run_dir, 'train.json'))
    if not info and not osp.isfile(run.checkpoint):
        return None  # nothing trained yet
    if run.teacher_run is not None and run.teacher_run.name in retrained:
        return f'its teacher {run.teacher_run.name} was trained again'
    if not info:
        return None  # a checkpoint without a record: kept as it is
    if 'train_time_s' in info and not osp.isfile(run.checkpoint):
        return f'{run.checkpoint} was deleted after the training finished'
    stored, now = info.get('teacher_stamp'), teacher_stamp(run)
    if stored != now:
        return (f'it trained on the teacher {stored}, but the teacher is '
                f'now {now}')
    return None


def execute(run: Run, args: argparse.Namespace, retrained: set) -> str:
    """Skip, test or train one run; 'skipped', 'tested' or 'trained'."""
    stale = stale_reason(run, retrained)
    if stale:  # start over (no resume of the old training)
        print(f'[run_steps] {run.name} is stale, trained again from the '
              f'start: {stale}', flush=True)
        for name in ('final.pth', 'result.json', 'train.json',
                     'last_checkpoint'):
            if osp.lexists(osp.join(run.run_dir, name)):
                os.remove(osp.join(run.run_dir, name))
    check_seed(run, args.seed)
    reference = None
    if run.teacher_run is not None:
        reference = (read_result(run.teacher_run) or {}).get(
            'metrics', {}).get('all_AP50')
    cfg = run_config(run, args, reference)
    check_config(run, cfg)
    if read_result(run) is not None and osp.isfile(run.checkpoint):
        return 'skipped'
    train = not osp.isfile(run.checkpoint)
    if train:
        cfg.resume = osp.isfile(osp.join(run.run_dir, 'last_checkpoint'))
    else:
        cfg.load_from = run.checkpoint
    stamp = config_stamp(cfg)
    prepare_offline(cfg)  # no download of weights a checkpoint overwrites
    train_and_test(run, cfg, train, args.seed, stamp)
    if train:
        retrained.add(run.name)
    return 'trained' if train else 'tested'


def main(argv=None) -> dict:
    """Run the sequence; the runs, their statuses and the table rows."""
    args = parse_args(argv)
    setup_cache_size_limit_of_dynamo()
    try:
        spec = load_spec(args.spec)
        work_dir = args.work_dir or spec.get('work_dir') or osp.join(
            'work_dirs', 'incremental',
            osp.splitext(osp.basename(args.spec))[0])
        runs = plan_runs(spec, args.spec, work_dir, bounds=args.bounds)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f'[run_steps] {exc}') from None
    print(f'[run_steps] seed {args.seed} for every run (another: --seed N)'
          f'; {len(runs)} runs in {work_dir}:', flush=True)
    for run in runs:
        print(f'  {run.name}: {run.config}; old {list(run.old_classes)}, '
              f'new {list(run.new_classes)}; teacher {run.teacher}')
    if args.dry_run:
        return dict(runs=runs, statuses={}, rows=[])
    title = f'{osp.basename(args.spec)}, seed {args.seed}'
    statuses, retrained, rows = {}, set(), []
    for run in runs:
        statuses[run.name] = execute(run, args, retrained)
        print(f'[run_steps] {run.name}: {statuses[run.name]}', flush=True)
        rows = write_aggregate(runs, work_dir, title, args.seed)
    print(format_table(rows, title))
    print(f'[run_steps] wrote {osp.join(work_dir, "results.md")} and '
          'results.json', flush=True)
    return dict(runs=runs, statuses=statuses, rows=rows)


if __name__ == '__main__':
    main()
