"""The results of a sequence of incremental steps and its table.

Each run writes ``result.json`` (metrics, time, memory); the aggregate of
the finished runs is ``results.md`` and ``results.json`` in the sequence's
work dir (see :mod:`.sequence`).
"""
import json
import math
import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.config import Config

from rcnn_plugin.utils.config_types import cfg_type_name
from rcnn_plugin.utils.fileio import atomic_open

from .sequence import Run

AP_KEYS = ('old_AP50', 'new_AP50', 'all_AP50')


def incremental_evaluator(cfg: Config, old_classes: Sequence[str],
                          reference: Optional[float]) -> dict:
    """The run's test evaluator: :class:`IncrementalVOCMetric` only.

    Keeps the arguments of an IncrementalVOCMetric of the config (e.g.
    ``eval_mode``) and sets the old classes and the reference.

    Args:
        cfg (Config): The run's config.
        old_classes (Sequence[str]): Classes known before the step.
        reference (float, optional): The teacher's AP50 on its classes,
            for the forgetting.

    Returns:
        dict: The metric's config.
    """
    metrics = cfg.get('test_evaluator') or []
    metrics = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    found = [dict(m) for m in metrics
             if cfg_type_name(m) == 'IncrementalVOCMetric']
    metric = found[0] if found else dict(type='IncrementalVOCMetric')
    metric.update(old_classes=list(old_classes),
                  reference_old_ap50=reference)
    return metric


def read_result(run: Run) -> Optional[dict]:
    """The run's ``result.json``, or None if it has none."""
    if not osp.isfile(run.result_file):
        return None
    with open(run.result_file, encoding='utf-8') as f:
        return json.load(f)


def write_json(path: str, data: dict) -> None:
    """Write ``data`` atomically (a half-written file is never read)."""
    with atomic_open(path, encoding='utf-8') as f:
        json.dump(_finite(data), f, indent=2)


def _finite(value):
    """NaN (a class mean over no class) as None: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def parse_metrics(metrics: dict) -> dict:
    """IncrementalVOCMetric's keys without the ``incremental/`` prefix."""
    out = {}
    for key, value in metrics.items():
        name = key.split('/', 1)[-1]
        if name in AP_KEYS or name == 'forgetting' or \
                name.startswith('AP50_'):
            out[name] = value
    return out


def forgetting_since_learned(run: Run) -> Optional[float]:
    """The old classes' forgetting over the run's whole chain of steps.

    Per old class, its best AP50 in an earlier run of the chain (the
    teacher, the teacher's teacher, ...) minus its AP50 now, averaged over
    the old classes (the average forgetting of Chaudhry et al., 2018).
    ``IncrementalVOCMetric``'s ``forgetting`` counts the last step only.

    Args:
        run (Run): A finished run.

    Returns:
        float, optional: The forgetting, None for a run without a teacher,
        a result, or an old class measured before.
    """
    now = (read_result(run) or {}).get('metrics', {})
    best, ancestor = {}, run.teacher_run
    while ancestor is not None:
        past = (read_result(ancestor) or {}).get('metrics', {})
        for cls in run.old_classes:
            ap = past.get(f'AP50_{cls}')
            if ap is not None:
                best[cls] = max(best.get(cls, ap), ap)
        ancestor = ancestor.teacher_run
    drops = [best[cls] - now[f'AP50_{cls}'] for cls in best
             if now.get(f'AP50_{cls}') is not None]
    return sum(drops) / len(drops) if drops else None


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{100 * value:.1f}'


def _memory(row: dict) -> str:
    if row.get('peak_gpu_mib') is not None:
        return f'{row["peak_gpu_mib"]:.0f} GPU'
    if row.get('peak_rss_mib') is not None:
        return f'{row["peak_rss_mib"]:.0f} RSS'
    return '-'


VARIANTS = dict(method='method', lower='lower: fine-tuning',
                upper='upper: joint training')


def format_table(rows: List[dict], title: str) -> str:
    """The aggregate table in markdown.

    Args:
        rows (list[dict]): ``result.json`` contents, in run order.
        title (str): The heading.

    Returns:
        str: A heading, a note on the units and the table.
    """
    lines = [
        f'# {title}', '',
        'AP50 (%) on each step\'s test split; forgetting: the teacher\'s '
        'AP50 on the old classes minus this model\'s (points); since '
        'learned: per old class, its best AP50 earlier in the chain minus '
        'its AP50 now, averaged. lower: plain fine-tuning (its own chain '
        'of steps); upper: joint training on every class so far. Peak '
        'memory in MiB.', '',
        '| step | run | old classes | new classes | old AP50 | new AP50 '
        '| all AP50 | forgetting | since learned | train time (s) '
        '| peak memory |',
        '|---|---|---|---|---|---|---|---|---|---|---|']
    classes = []
    for row in rows:
        m = row.get('metrics', {})
        train = row.get('train_time_s')
        classes += [c for c in row['old_classes'] + row['new_classes']
                    if c not in classes]
        lines.append('| ' + ' | '.join([
            row['step'], VARIANTS[row['variant']],
            ', '.join(row['old_classes']) or '-',
            ', '.join(row['new_classes']),
            _pct(m.get('old_AP50')), _pct(m.get('new_AP50')),
            _pct(m.get('all_AP50')), _pct(m.get('forgetting')),
            _pct(row.get('forgetting_since_learned')),
            '-' if train is None else f'{train:.0f}', _memory(row)]) + ' |')
    lines += ['', 'AP50 (%) per class:', '',
              '| step | run | ' + ' | '.join(classes) + ' |',
              '|---|---|' + '---|' * len(classes)]
    for row in rows:
        m = row.get('metrics', {})
        lines.append('| ' + ' | '.join(
            [row['step'], VARIANTS[row['variant']]] +
            [_pct(m.get(f'AP50_{c}')) for c in classes]) + ' |')
    return '\n'.join(lines) + '\n'


def write_aggregate(runs: List[Run], work_dir: str, title: str,
                    seed: int) -> List[dict]:
    """Write ``results.md`` and ``results.json`` of the finished runs.

    Args:
        runs (list[Run]): The planned runs, in order.
        work_dir (str): Where to write.
        title (str): The markdown heading.
        seed (int): The sequence's seed.

    Returns:
        list[dict]: The rows (finished runs only).
    """
    rows = []
    for run in runs:
        row = read_result(run)
        if row is not None:
            row['forgetting_since_learned'] = forgetting_since_learned(run)
            rows.append(row)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.md'), 'w', encoding='utf-8') as f:
        f.write(format_table(rows, title))
    write_json(osp.join(work_dir, 'results.json'),
               dict(title=title, seed=seed, rows=rows))
    return rows
