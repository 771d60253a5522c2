"""A markdown summary of a run: metric tables and links to the figures."""
import csv
import glob
import os.path as osp
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


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


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Write ``summary.md`` into the run's log dir after each evaluation.

    The report lists the last validation and test metrics, renders the
    CSV tables that the metrics of this package wrote (detection report,
    confusion matrix, per-class AP, FROC; long tables are cut to
    ``max_rows`` with a link), links every PNG figure in the log dir and
    the best checkpoints (``best_*.pth``) in the work dir. It is rewritten
    after every validation and test epoch and at the end of the run, so it
    exists even if the run stops early.

    Args:
        filename (str): Report file name in ``runner.log_dir``.
            Defaults to 'summary.md'.
        max_rows (int): Rows shown per CSV table. Defaults to 20.
    """
    priority = 'LOWEST'

    def __init__(self, filename: str = 'summary.md',
                 max_rows: int = 20) -> None:
        if not filename.endswith('.md'):
            raise ValueError(f'filename must end with .md, got {filename}')
        self.filename = filename
        self.max_rows = max_rows
        self.metrics: Dict[str, dict] = {}

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
        self.metrics['test'] = dict(epoch=runner.epoch, iter=runner.iter,
                                    values=dict(metrics or {}))
        self.write(runner)

    def after_run(self, runner) -> None:
        """Rewrite the report once more (best checkpoints are final now).

        Args:
            runner (Runner): The runner.
        """
        self.write(runner)

    def write(self, runner) -> str:
        """Write the report and return its path.

        Args:
            runner (Runner): The runner.

        Returns:
            str: Path of the markdown file.
        """
        base = runner.log_dir
        lines = [f'# Run summary: {runner.experiment_name}', '',
                 f'- work dir: `{runner.work_dir}`',
                 f'- epoch {runner.epoch}, iteration {runner.iter}', '']
        for mode, rec in self.metrics.items():
            lines += [f'## {mode} metrics (after epoch {rec["epoch"]}, '
                      f'iteration {rec["iter"]})', '']
            rows = [[k, _fmt(v)] for k, v in rec['values'].items()]
            lines += _md_table(['metric', 'value'], rows) + ['']
        csvs = sorted(glob.glob(osp.join(base, '*.csv')))
        if csvs:
            lines += ['## Tables', '']
            for path in csvs:
                lines += _csv_section(path, base, self.max_rows)
        pngs = sorted(glob.glob(osp.join(base, '*.png')))
        if pngs:
            lines += ['## Figures', '']
            for path in pngs:
                rel = osp.relpath(path, base)
                lines += [f'![{osp.basename(path)}]({rel})', '']
        best = sorted(glob.glob(osp.join(runner.work_dir, 'best_*.pth')))
        if best:
            lines += ['## Best checkpoints', '']
            lines += [f'- [{osp.basename(p)}]({osp.relpath(p, base)})'
                      for p in best]
        path = osp.join(base, self.filename)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path
