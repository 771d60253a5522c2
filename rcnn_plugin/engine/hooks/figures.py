"""Matplotlib figures of the run folder, on an Agg canvas (no pyplot)."""
import math
import os
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np

__all__ = ['grid_figure', 'plot_series', 'save_png']


def grid_figure(num_panels: int, ncols: int = 5,
                panel: Tuple[float, float] = (3.2, 2.6)) -> tuple:
    """A figure with ``num_panels`` axes in rows of ``ncols``.

    Args:
        num_panels (int): Number of axes, at least 1.
        ncols (int): Axes per row. Defaults to 5.
        panel (tuple[float, float]): Size of one panel in inches.
            Defaults to (3.2, 2.6).

    Returns:
        tuple: ``(figure, list of axes)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    if num_panels < 1:
        raise ValueError(f'num_panels must be >= 1, got {num_panels}')
    ncols = min(ncols, num_panels)
    nrows = math.ceil(num_panels / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(num_panels)]
    return fig, axes


def plot_series(ax, x: Sequence[float], series: List[tuple],
                title: str) -> None:
    """Lines against epochs; missing values (NaN) leave gaps.

    Args:
        ax (matplotlib.axes.Axes): The axes.
        x (Sequence[float]): Epochs.
        series (list[tuple]): ``(label, values, style)`` per line.
        title (str): Axes title.
    """
    for label, values, style in series:
        values = np.asarray(values, dtype=np.float64)
        if np.isfinite(values).any():
            ax.plot(x, values, style, label=label, markersize=3)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('epoch', fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    if len(series) > 1 and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def save_png(fig, path: str) -> str:
    """Lay out and save a figure as PNG (written to a temporary name first,
    so a reader never sees half a file).

    Args:
        fig (matplotlib.figure.Figure): Figure with an Agg canvas.
        path (str): The ``.png`` path.

    Returns:
        str: ``path``.
    """
    fig.tight_layout()
    tmp = osp.join(osp.dirname(path), f'.{osp.basename(path)}.tmp.png')
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path
