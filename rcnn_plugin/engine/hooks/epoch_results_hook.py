"""``results.csv`` and ``results.png``: one row per epoch, as Ultralytics."""
import csv
import math
import os.path as osp
import re
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from rcnn_plugin.utils.fileio import atomic_open

from .figures import grid_figure, plot_series, save_png
from .health_monitors import scalar

__all__ = ['EpochResultsHook', 'headline_first', 'read_results']

FIXED = ('epoch', 'iter', 'lr')
STAGES = ('train/', 'val/')


def _fmt(value) -> str:
    if value is None:
        return ''
    if isinstance(value, int):
        return str(value)
    return f'{value:.6g}'


def headline_first(keys: List[str]) -> List[str]:
    """Metric keys with the summary ones (``.../mAP``, ``.../bbox_mAP``,
    ``..._mAP_50``) first, per-class ones after; otherwise in order.

    Args:
        keys (list[str]): Metric keys.

    Returns:
        list[str]: The same keys, reordered.
    """
    return sorted(keys, key=lambda k: re.search(
        r'(^|/|_)mAP(_50)?$', k) is None)


def _group(key: str) -> int:
    return next((i for i, stage in enumerate(STAGES)
                 if key.startswith(stage)), len(STAGES))


def _parse(text: str):
    if text == '':
        return None
    number = float(text)
    return int(number) if number.is_integer() and '.' not in text and \
        'e' not in text.lower() else number


def read_results(path: str) -> List[dict]:
    """Read a ``results.csv`` back: numbers as int / float, '' as None.

    Args:
        path (str): The CSV file.

    Returns:
        list[dict]: One dict per row, keyed by column.
    """
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    try:
        return [{k: _parse(v) for k, v in row.items()} for row in rows]
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{path} is not a results.csv of numbers ({exc}); '
                         'move it away to start a new one') from None


@HOOKS.register_module()
class EpochResultsHook(Hook):
    """Write ``results.csv`` and ``results.png`` into ``runner.work_dir``.

    One row per epoch: ``epoch``, ``iter`` (iterations done), ``lr`` (of
    the epoch's last iteration), ``train/<term>`` (the mean over the
    epoch's iterations of each logged term: ``loss``, ``loss_*``, ``acc``),
    then every scalar of the epoch's evaluation: ``val/<term>`` (from
    :class:`ValLossHook`) and the metrics (``coco/bbox_mAP``, ...). A new
    key adds a column (the file is rewritten; earlier rows have it empty).
    The row is written after the training epoch and completed after its
    validation, so the file is current when a run stops; the figure is
    drawn after each validation and at the end of training.

    ``results.png`` plots each loss term (training solid, validation
    dashed), the lr and ``max_metric_panels`` metrics (the mAP ones first,
    :func:`headline_first`; values below 0, COCO's "no such objects", are
    left out) against the epoch.

    On resume the rows up to the resumed epoch are kept and the next ones
    appended; a fresh run (epoch 0) starts a new file. Rows dropped from an
    existing file are reported in the log. Needs an epoch-based training
    loop: with an iteration-based one, ``before_train`` raises ValueError.

    Args:
        filename (str): CSV name in the work dir; the figure takes its
            stem with ``.png``. Defaults to 'results.csv'.
        max_metric_panels (int): Metrics plotted. Defaults to 8.
    """

    priority = 'LOW'  # after ValLossHook added its val/ terms

    def __init__(self, filename: str = 'results.csv',
                 max_metric_panels: int = 8) -> None:
        if not filename.endswith('.csv'):
            raise ValueError(f'filename must end with .csv, got {filename}')
        if max_metric_panels < 0:
            raise ValueError('max_metric_panels must be >= 0, got '
                             f'{max_metric_panels}')
        self.filename = filename
        self.max_metric_panels = max_metric_panels
        self.rows: List[dict] = []
        self._sums: Dict[str, List[float]] = {}
        self._training = False

    def before_train(self, runner) -> None:
        """Check the loop; keep the rows up to the resumed epoch.

        Args:
            runner (Runner): The training runner.
        """
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise ValueError(
                'EpochResultsHook writes one row per epoch and needs an '
                'epoch-based training loop (train_cfg=dict(by_epoch=True, '
                f'max_epochs=...)), not {type(runner.train_loop).__name__}; '
                'remove the hook (or the run-folder overlay) from this '
                'config.')
        self.path = osp.join(runner.work_dir, self.filename)
        self.rows, self._sums, self._training = [], {}, True
        if osp.isfile(self.path):
            old = read_results(self.path)
            self.rows = [r for r in old if (r.get('epoch') or 0)
                         <= runner.epoch]
            if len(self.rows) < len(old):
                print_log(
                    f'EpochResultsHook: {self.path} had {len(old)} rows; '
                    f'kept the {len(self.rows)} up to epoch {runner.epoch} '
                    f'(where this run starts), dropped '
                    f'{len(old) - len(self.rows)}.', logger='current')

    def after_train(self, runner) -> None:
        """Draw the figure once more; stop recording (a later validation
        or test adds no row).

        Args:
            runner (Runner): The training runner.
        """
        if self.rows:
            self.write()
        self._training = False

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Add the iteration's logged terms to the epoch's sums.

        Args:
            runner (Runner): The training runner.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch. Defaults to None.
            outputs (dict, optional): The logged terms. Defaults to None.
        """
        for key, value in (outputs or {}).items():
            value = scalar(value)
            if value is not None:
                total = self._sums.setdefault(key, [0.0, 0])
                total[0] += value
                total[1] += 1

    def after_train_epoch(self, runner) -> None:
        """Write the epoch's row (training part).

        Args:
            runner (Runner): The training runner.
        """
        row = self._row(runner.epoch + 1)
        row['iter'] = runner.iter
        lr = runner.message_hub.log_scalars.get('train/lr')
        row['lr'] = float(lr.current()) if lr is not None else None
        for key, (total, count) in self._sums.items():
            row[f'train/{key}'] = total / count
        self._sums = {}
        self.write(plot=False)  # drawn after the validation (~1 s)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Complete the epoch's row with the evaluation's scalars.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): This evaluation's metrics.
                Defaults to None.
        """
        if not self._training:
            return
        row = self._row(runner.epoch)  # epochs done, this one included
        for key, value in (metrics or {}).items():
            value = scalar(value)
            if value is not None:
                row[key] = value
        self.write()

    def _row(self, epoch: int) -> dict:
        for row in self.rows:
            if row.get('epoch') == epoch:
                return row
        self.rows.append(dict(epoch=epoch))
        return self.rows[-1]

    def columns(self) -> List[str]:
        """Column order: fixed, training terms, validation terms, metrics.

        Returns:
            list[str]: The CSV header.
        """
        seen: Dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        keys = [k for k in seen if k not in FIXED]
        # A stable sort: first seen first within each group.
        return list(FIXED) + sorted(keys, key=_group)

    def write(self, plot: bool = True) -> Optional[str]:
        """Rewrite the CSV and the figure (main process only).

        Args:
            plot (bool): Also redraw ``results.png``. Defaults to True.

        Returns:
            str, optional: The CSV path, or None on other ranks.
        """
        if not is_main_process():
            return None
        header = self.columns()
        with atomic_open(self.path, newline='') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in sorted(self.rows, key=lambda r: r['epoch']):
                writer.writerow([_fmt(row.get(k)) for k in header])
        if plot:
            self.plot(header)
        return self.path

    def plot(self, header: List[str]) -> str:
        """Draw ``results.png`` from the rows.

        Args:
            header (list[str]): Columns, as :meth:`columns` orders them.

        Returns:
            str: The PNG path.
        """
        rows = sorted(self.rows, key=lambda r: r['epoch'])
        x = [r['epoch'] for r in rows]

        def col(key, positive=False):
            values = [r.get(key) for r in rows]
            return [math.nan if v is None or (positive and v < 0) else v
                    for v in values]

        terms = list(dict.fromkeys(
            k.split('/', 1)[1] for k in header if k.startswith(STAGES)))
        metrics = headline_first([
            k for k in header if k not in FIXED
            and not k.startswith(STAGES)])[:self.max_metric_panels]
        fig, axes = grid_figure(len(terms) + 1 + len(metrics))
        for ax, term in zip(axes, terms):
            plot_series(ax, x, [('train', col(f'train/{term}'), 'o-'),
                                ('val', col(f'val/{term}'), 's--')], term)
        plot_series(axes[len(terms)], x, [('lr', col('lr'), 'o-')], 'lr')
        for ax, key in zip(axes[len(terms) + 1:], metrics):
            plot_series(ax, x, [(key, col(key, positive=True), 'o-')], key)
        return save_png(fig, osp.splitext(self.path)[0] + '.png')
