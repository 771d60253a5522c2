"""``labels.png``: the training set's boxes at a glance, before training."""
import os.path as osp
from typing import Any, Optional

import numpy as np
from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from rcnn_plugin.apis.drawing import class_colour
from rcnn_plugin.datasets.stats import box_statistics, class_instance_counts

from .figures import grid_figure, save_png

__all__ = ['LabelStatsHook', 'plot_labels']


def _rgb(label: int) -> tuple:
    b, g, r = class_colour(int(label))
    return (r / 255.0, g / 255.0, b / 255.0)


def _log_axis(axis) -> None:
    from matplotlib import ticker
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f'{v:g}'))
    axis.set_minor_formatter(ticker.NullFormatter())


def _empty(ax, title: str, text: str) -> None:
    ax.text(0.5, 0.5, text, ha='center', va='center', transform=ax.transAxes)
    ax.set_title(title, fontsize=9)


def _class_bars(ax, counts: dict) -> None:
    names, values = list(counts), list(counts.values())
    pos = np.arange(len(names))
    ax.bar(pos, values, color=[_rgb(i) for i in pos])
    small = len(names) > 12
    ax.set_xticks(pos, names, rotation=90 if small else 30, ha='center'
                  if small else 'right', fontsize=6 if small else 8)
    for i, value in enumerate(values):
        ax.text(i, value, str(value), ha='center', va='bottom', fontsize=7)
    ax.set_ylabel('instances')
    ax.set_title(f'instances per class ({sum(values)} boxes)', fontsize=9)


def _sizes(ax, stats: dict, max_points: int) -> None:
    w, h, labels = stats['widths'], stats['heights'], stats['labels']
    keep = np.flatnonzero((w > 0) & (h > 0))
    if len(keep) > max_points:
        keep = np.random.default_rng(0).choice(keep, max_points,
                                               replace=False)
    ax.scatter(w[keep], h[keep], s=4, alpha=0.4,
               c=[_rgb(v) for v in labels[keep]])
    ax.set_xscale('log')
    ax.set_yscale('log')
    _log_axis(ax.xaxis)
    _log_axis(ax.yaxis)
    ax.set_xlabel('width (px)')
    ax.set_ylabel('height (px)')
    ax.set_title('box width vs height (original image)', fontsize=9)


def _ratios(ax, stats: dict) -> None:
    w, h = stats['widths'], stats['heights']
    ratio = h[(w > 0) & (h > 0)] / w[(w > 0) & (h > 0)]
    low, high = ratio.min() / 1.1, ratio.max() * 1.1
    ax.hist(ratio, bins=np.geomspace(low, high, 40), color='tab:blue')
    ax.set_xscale('log')
    _log_axis(ax.xaxis)
    ax.set_xlabel('height / width')
    ax.set_title(f'aspect ratio (median {np.median(ratio):.2f})',
                 fontsize=9)


def _centres(ax, stats: dict) -> None:
    cx, cy = stats['cx'], stats['cy']
    ok = np.isfinite(cx) & np.isfinite(cy)
    if not ok.any():
        _empty(ax, 'box centres', 'image sizes unknown')
        return
    hist, _, _ = np.histogram2d(cx[ok], cy[ok], bins=32,
                                range=[[0, 1], [0, 1]])
    image = ax.imshow(hist.T, origin='upper', extent=(0, 1, 1, 0),
                      cmap='Blues', aspect='auto')
    ax.figure.colorbar(image, ax=ax, label='boxes')
    ax.set_xlabel('x / image width')
    ax.set_ylabel('y / image height')
    ax.set_title('box centres (image orientation)', fontsize=9)


def plot_labels(dataset: Any, path: str, max_points: int = 5000) -> str:
    """Draw the label statistics of a detection dataset to a PNG.

    Panels: instances per class; box width against height (pixels of the
    original image, log scales, at most ``max_points`` boxes drawn); the
    distribution of height / width; the box centres over the image
    (normalised, y down). Ignored instances are left out.

    Args:
        dataset (Any): A built detection dataset (or mmengine wrapper).
        path (str): The ``.png`` to write.
        max_points (int): Boxes drawn in the scatter. Defaults to 5000.

    Returns:
        str: ``path``.
    """
    counts = class_instance_counts(dataset)
    stats = box_statistics(dataset)
    fig, axes = grid_figure(4, ncols=2, panel=(5.0, 4.0))
    _class_bars(axes[0], counts)
    if not ((stats['widths'] > 0) & (stats['heights'] > 0)).any():
        for ax, title in zip(axes[1:], ('box sizes', 'aspect ratio',
                                        'box centres')):
            _empty(ax, title, 'no boxes in the training set')
    else:
        _sizes(axes[1], stats, max_points)
        _ratios(axes[2], stats)
        _centres(axes[3], stats)
    return save_png(fig, path)


@HOOKS.register_module()
class LabelStatsHook(Hook):
    """Write ``labels.png`` into the work dir before training starts.

    Reads the training dataset's annotations (no image is loaded): see
    :func:`plot_labels`. Rewritten at each start (also on resume).

    Args:
        filename (str): PNG name in ``runner.work_dir``.
            Defaults to 'labels.png'.
        max_points (int): Boxes drawn in the size scatter.
            Defaults to 5000.
    """

    priority = 'NORMAL'

    def __init__(self, filename: str = 'labels.png',
                 max_points: int = 5000) -> None:
        if not filename.endswith('.png'):
            raise ValueError(f'filename must end with .png, got {filename}')
        if max_points < 1:
            raise ValueError(f'max_points must be >= 1, got {max_points}')
        self.filename = filename
        self.max_points = max_points

    def before_train(self, runner) -> Optional[str]:
        """Draw the training set's label statistics.

        Args:
            runner (Runner): The training runner.

        Returns:
            str, optional: The PNG path (None on other ranks).
        """
        if not is_main_process():
            return None
        return plot_labels(runner.train_dataloader.dataset,
                           osp.join(runner.work_dir, self.filename),
                           self.max_points)
