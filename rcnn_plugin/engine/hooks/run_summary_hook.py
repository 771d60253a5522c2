"""A markdown summary of a run: metric tables and links to the figures."""
import csv
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from rcnn_plugin.utils.fileio import atomic_open

from .epoch_results_hook import headline_first


def _md_table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return lines


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.4f}'
    return str(value)


def _csv_section(path: str, base: str, max_rows: int) -> List[str]:
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    if not rows:
        return []
    body = rows[1:]
    lines = [f'### {osp.basename(path)}', '']
    shown = body[:max_rows]
    lines += _md_table(rows[0], shown)
    if len(body) > max_rows:
        lines.append(f'\n({len(body) - max_rows} more rows in '
                     f'[{osp.basename(path)}]({osp.relpath(path, base)}))')
    return lines + ['']


# Columns of results.csv shown in the summary (more are in the file).
RESULT_COLUMNS = ('epoch', 'lr', 'train/loss', 'val/loss')
RUN_FILES = ('results.csv', 'health.json', 'best.pth', 'last.pth')


def _results_section(path: str, base: str, max_rows: int) -> List[str]:
    """The last epochs of ``results.csv``: a few columns, then a link."""
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return []
    header = list(rows[0])
    metrics = headline_first([k for k in header if '/' in k and not
                              k.startswith(('train/', 'val/'))])[:4]
    cols = [c for c in RESULT_COLUMNS if c in header] + metrics
    shown = rows[-max_rows:]
    lines = ['## Results per epoch', '']
    lines += _md_table(cols, [[r[c] for c in cols] for r in shown])
    rel = osp.relpath(path, base)
    lines.append(f'\n({len(rows)} epochs, {len(header)} columns in '
                 f'[{osp.basename(path)}]({rel}))')
    return lines + ['']


def _health(runner) -> Optional[dict]:
    """Findings of a TrainingHealthHook of a training runner, else
    health.json (a test runner's hook never loaded it: its empty findings
    would read as healthy)."""
    for hook in getattr(runner, 'hooks', []) if _trained(runner) else []:
        if type(hook).__name__ == 'TrainingHealthHook':
            findings = list(hook.findings)
            stopped = any(f['action'] == 'stop' for f in findings)
            status = ('stopped' if stopped else 'warned') if findings \
                else 'healthy'
            return dict(status=status, skipped_steps=hook.skipped,
                        findings=findings)
    path = osp.join(runner.work_dir, 'health.json')
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return None


def _health_section(runner) -> List[str]:
    health = _health(runner)
    if health is None:  # not monitored
        return []
    lines = ['## Training health', '']
    lines.append(f'Status: **{health.get("status")}**, non-finite steps '
                 f'skipped: {health.get("skipped_steps", 0)}. Details in '
                 'health.json.')
    findings = health.get('findings') or []
    if findings:
        rows = [[str(f.get(k, '')) for k in ('kind', 'epoch', 'iteration',
                                             'action')]
                + [str(f.get('message', '')).splitlines()[0]]
                for f in findings]
        lines += [''] + _md_table(
            ['kind', 'epoch', 'iteration', 'action', 'finding'], rows)
    return lines + ['']


def _trained(runner) -> bool:
    """Whether this runner built its train loop (a test-only runner keeps
    the loop's config dict)."""
    loop = getattr(runner, '_train_loop', None)
    return loop is not None and not isinstance(loop, dict)


def _early_stop(runner) -> str:
    """`` (stopped early: N of M epochs)`` (or iterations, for an
    iteration-based loop) when the train loop was stopped before its end
    (early stopping), else ``''``. Reads the loop only if the runner has
    built it (a test-only runner has a dict)."""
    loop = getattr(runner, '_train_loop', None)
    if not getattr(loop, 'stop_training', False):
        return ''
    # IterBasedTrainLoop also has max_epochs (1): ask for iterations first
    by_iter = isinstance(loop, IterBasedTrainLoop)
    planned = getattr(loop, 'max_iters' if by_iter else 'max_epochs', None)
    done, unit = (runner.iter, 'iterations') if by_iter else (
        runner.epoch, 'epochs')
    if not planned or done >= planned:
        return ''
    return f' (stopped early: {done} of {planned} {unit})'


def _run_files(work_dir: str, base: str) -> List[str]:
    names = [n for n in RUN_FILES if osp.lexists(osp.join(work_dir, n))]
    if not names:
        return []
    lines = ['## Run folder', '']
    lines += [f'- [{n}]({osp.relpath(osp.join(work_dir, n), base)})'
              for n in names]
    return lines + ['']


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Write ``summary.md`` into the run's log dir after each evaluation.

    The report lists the last validation and test metrics, the
    training-health status and findings (of the runner's
    ``TrainingHealthHook``, else ``<work_dir>/health.json``), the last
    epochs of ``results.csv`` (:class:`EpochResultsHook`; a few columns and
    a link), the run-folder files (``results.png``, ``labels.png``,
    ``val_predictions.jpg``, ``best.pth``, ``last.pth``, ...), renders the
    other CSV tables of the work dir and the log dir (detection report,
    confusion matrix, per-class AP, FROC; long tables are cut to
    ``max_rows`` with a link), links every PNG / JPEG figure in both and
    the best checkpoints (``best_*.pth``) in the work dir. It is rewritten
    after every validation and test epoch and at the end of the run, so it
    exists even if the run stops early.

    Args:
        filename (str): Report file name. Defaults to 'summary.md'.
        max_rows (int): Rows shown per CSV table. Defaults to 20.
        in_work_dir (bool): Write into ``runner.work_dir`` (the run
            folder, which outlives the per-start log dirs) instead of
            ``runner.log_dir``. Defaults to False.
    """
    priority = 'LOWEST'

    def __init__(self, filename: str = 'summary.md',
                 max_rows: int = 20, in_work_dir: bool = False) -> None:
        if not filename.endswith('.md'):
            raise ValueError(f'filename must end with .md, got {filename}')
        self.filename = filename
        self.max_rows = max_rows
        self.in_work_dir = in_work_dir
        self.metrics: Dict[str, dict] = {}
        self._resumed = False  # the metrics an earlier start recorded

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Record validation metrics and rewrite the report.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Metrics of this evaluation.
                Defaults to None.
        """
        self.metrics['val'] = dict(epoch=runner.epoch, iter=runner.iter,
                                   values=dict(metrics or {}))
        self.write(runner)

    def after_test_epoch(self, runner,
                         metrics: Optional[dict] = None) -> None:
        """Record test metrics and rewrite the report.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Metrics of this evaluation.
                Defaults to None.
        """
        hub = getattr(runner, 'message_hub', None)
        info = hub.get_info if hub is not None else lambda key: None
        cfg = getattr(runner, 'cfg', None) or {}
        self.metrics['test'] = dict(
            epoch=runner.epoch, iter=runner.iter, values=dict(metrics or {}),
            checkpoint=info('test_checkpoint') or cfg.get('load_from'),
            note=info('test_note'))
        self.write(runner)

    def after_run(self, runner) -> None:
        """Rewrite the report once more (best checkpoints are final now).

        Args:
            runner (Runner): The runner.
        """
        self.write(runner)

    def write(self, runner) -> Optional[str]:
        """Write the report and return its path (only the main process
        writes; the others return None).

        Args:
            runner (Runner): The runner.

        Returns:
            str | None: Path of the markdown file.
        """
        if not is_main_process():
            return None
        base = runner.work_dir if self.in_work_dir else runner.log_dir
        store = osp.join(base,
                         osp.splitext(self.filename)[0] + '_metrics.json')
        if not self._resumed and osp.isfile(store):
            # a resumed run or a later test run: the validation of before
            # stays in the report until this start validates
            with open(store) as f:
                for mode, rec in json.load(f).items():
                    self.metrics.setdefault(mode, rec)
        self._resumed = True
        with atomic_open(store) as f:
            json.dump(self.metrics, f, indent=2, default=str)
        lines = [f'# Run summary: {runner.experiment_name}', '',
                 f'- work dir: `{runner.work_dir}`',
                 f'- epoch {runner.epoch}, iteration {runner.iter}'
                 f'{_early_stop(runner)}' if _trained(runner) else
                 '- no training in this process (a test or validation '
                 'run)', '']
        for mode, rec in self.metrics.items():
            if rec.get('checkpoint'):
                where = f'checkpoint `{osp.basename(rec["checkpoint"])}`'
            else:
                where = f'after epoch {rec["epoch"]}, iteration {rec["iter"]}'
            lines += [f'## {mode} metrics ({where})', '']
            if rec.get('note'):
                lines += [f'Note: {rec["note"]}.', '']
            rows = [[k, _fmt(v)] for k, v in rec['values'].items()]
            lines += _md_table(['metric', 'value'], rows) + ['']
        lines += _health_section(runner)
        results = osp.join(runner.work_dir, 'results.csv')
        if osp.isfile(results):
            lines += _results_section(results, base, self.max_rows)
        lines += _run_files(runner.work_dir, base)
        lines += self._files(runner, base)
        path = osp.join(base, self.filename)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path

    def _files(self, runner, base: str) -> List[str]:
        dirs = list(dict.fromkeys([runner.work_dir, runner.log_dir]))
        found = {ext: sorted(p for d in dirs for p in glob.glob(
            osp.join(d, f'*.{ext}'))) for ext in ('csv', 'png', 'jpg')}
        lines: List[str] = []
        csvs = [p for p in found['csv'] if osp.basename(p) != 'results.csv'
                or osp.dirname(p) != runner.work_dir]
        if csvs:
            lines += ['## Tables', '']
            for path in csvs:
                lines += _csv_section(path, base, self.max_rows)
        figures = found['png'] + found['jpg']
        if figures:
            lines += ['## Figures', '']
            for path in figures:
                rel = osp.relpath(path, base)
                lines += [f'![{osp.basename(path)}]({rel})', '']
        best = sorted(glob.glob(osp.join(runner.work_dir, 'best_*.pth')))
        if best:
            lines += ['## Best checkpoints', '']
            lines += [f'- [{osp.basename(p)}]({osp.relpath(p, base)})'
                      for p in best]
        return lines
