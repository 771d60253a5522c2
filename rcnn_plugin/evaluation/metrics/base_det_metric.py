"""What the domain metrics share: per-image records, output dir, figures.

Ground truth comes from each data sample's ``gt_instances`` (boxes,
labels) and ``ignored_instances`` (ignore regions: ``iscrowd`` in COCO,
``difficult`` / ``ignore_flag`` in VOC-style datasets), as mmdet's
``VOCMetric`` reads them. Predictions are rescaled to the original image,
so the ground truth must be there too: the test pipeline loads annotations
*after* ``Resize`` (mmdet's and this project's configs do). A pipeline that
loads them before has them in the resized image; ``GroundTruthFrameHook``
finds that from the pipeline order and sets ``gt_in_input_frame``, and the
metric divides those boxes by each image's ``scale_factor``.
"""
import csv
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub, MMLogger, print_log

from ...utils.fileio import atomic_open
from ..functional.matching import as_boxes


def check_fractions(**values: float) -> None:
    """Raise a ValueError naming the first value outside [0, 1].

    Args:
        **values (float): Thresholds by argument name, e.g. ``iou_thr=0.5``.
    """
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f'{name} must be in [0, 1], got {value}')


def _numpy(value, dtype=np.float64) -> np.ndarray:
    if hasattr(value, 'tensor'):  # mmdet's BaseBoxes
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _to_original(boxes: np.ndarray, sample: dict) -> np.ndarray:
    """Boxes of the resized image in the original one: divided by the
    sample's ``scale_factor`` ``(w_scale, h_scale)`` (absent: no resize)."""
    w, h = sample.get('scale_factor', (1.0, 1.0))[:2]
    return boxes / np.array([w, h, w, h], dtype=np.float64)


def _instances(sample: dict, key: str, required: bool) -> Dict[str, Any]:
    inst = sample.get(key)
    # PackDetInputs packs empty gt_instances when nothing was loaded: an
    # image without boxes still has (empty) 'bboxes' if annotations were
    if inst is None or (required and 'bboxes' not in inst):
        if required:
            raise ValueError(
                f'data sample of image {sample.get("img_path")} has no '
                f'"{key}" boxes: load annotations in the test pipeline (add '
                "dict(type='LoadAnnotations', with_bbox=True) after Resize)")
        return dict(bboxes=np.zeros((0, 4)), labels=np.zeros(0, int))
    out = dict(bboxes=as_boxes(_numpy(inst.get('bboxes', []))),
               labels=_numpy(inst.get('labels', []), np.int64).reshape(-1))
    if 'scores' in inst:
        out['scores'] = _numpy(inst['scores']).reshape(-1)
    return out


class BaseDetMetric(BaseMetric):
    """Base of the domain metrics: collects boxes, writes files and figures.

    Files go to ``out_dir`` when given, else to the running experiment's log
    dir (``work_dir/<timestamp>``, found from the current ``MMLogger``'s
    log file); outside a runner without ``out_dir`` nothing is written.
    Figures are also sent to the current ``Visualizer``'s backends
    (TensorBoard, W&B, ...) with ``add_image``.

    ``gt_in_input_frame`` (default False) says the samples' ground-truth
    and ignore boxes are in the resized image (annotations loaded before
    ``Resize``): ``process`` then divides them by each sample's
    ``scale_factor``, into the frame of the predictions.
    ``GroundTruthFrameHook`` sets it from the pipeline order.

    Args:
        out_dir (str, optional): Where to write files. Defaults to None.
        collect_device (str): Device used to collect results across ranks.
            Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric keys. Defaults to
            None (the class's ``default_prefix``).
    """

    gt_in_input_frame = False

    def __init__(self,
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_dir = out_dir

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep the boxes, scores and labels of each image, the ground
        truth in the original image (see ``gt_in_input_frame``).

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): Data samples with
                ``pred_instances`` and ``gt_instances``.
        """
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            pred = _instances(sample, 'pred_instances', True)
            gt = _instances(sample, 'gt_instances', True)
            ign = _instances(sample, 'ignored_instances', False)
            if self.gt_in_input_frame:  # loaded before Resize
                gt['bboxes'] = _to_original(gt['bboxes'], sample)
                ign['bboxes'] = _to_original(ign['bboxes'], sample)
            self._check_labels(sample, pred['labels'], gt['labels'])
            self.results.append(
                dict(img_id=sample.get('img_id'),
                     pred_bboxes=pred['bboxes'],
                     pred_scores=pred.get('scores', np.ones(0)),
                     pred_labels=pred['labels'],
                     gt_bboxes=gt['bboxes'], gt_labels=gt['labels'],
                     ignore_bboxes=ign['bboxes'],
                     ignore_labels=ign['labels']))

    def _check_labels(self, sample: dict, pred: np.ndarray,
                      gt: np.ndarray) -> None:
        """Labels outside the classes were misfiled or never counted (a
        model or a predictions file of another class count)."""
        count = len((self.dataset_meta or {}).get('classes', ())) or None
        for what, labels, low in (('predicted', pred, 0), ('ground-truth',
                                                           gt, -1)):
            bad = labels[(labels < low) | (labels >= (count or np.inf))]
            if bad.size:
                raise ValueError(
                    f'image {sample.get("img_path", sample.get("img_id"))}'
                    f' has {what} label {int(bad[0])}, but the dataset has '
                    f'{count} classes {tuple(self.class_names)}: the model '
                    'or predictions were made for another class list '
                    '(num_classes, --classes)')

    @property
    def class_names(self) -> List[str]:
        """Class names from ``dataset_meta`` (set by the evaluator)."""
        meta = self.dataset_meta or {}
        if 'classes' not in meta:
            raise ValueError(f'{type(self).__name__} needs dataset_meta '
                             "with 'classes' (the evaluator sets it)")
        return list(meta['classes'])

    def resolve_out_dir(self) -> Optional[str]:
        """The directory files go to (see the class doc), or None."""
        out_dir = self.out_dir
        if out_dir is None:
            log_file = getattr(MMLogger.get_current_instance(), 'log_file',
                               None)
            out_dir = osp.dirname(log_file) if log_file else None
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
        return out_dir

    def write_json(self, name: str, data: Any) -> Optional[str]:
        """Write ``data`` to ``<out_dir>/<prefix>_<name>``.

        Args:
            name (str): File name after the prefix.
            data (Any): JSON-serialisable data.

        Returns:
            str, optional: The path written, or None.
        """
        path = self._path(name)
        if path:
            with atomic_open(path) as f:  # a kill keeps the earlier file
                json.dump(data, f, indent=2)
        return path

    def write_csv(self, name: str, header: Sequence[str],
                  rows: Sequence[Sequence]) -> Optional[str]:
        """Write a CSV table to ``<out_dir>/<prefix>_<name>``.

        Args:
            name (str): File name after the prefix.
            header (Sequence[str]): Column names.
            rows (Sequence[Sequence]): Table rows.

        Returns:
            str, optional: The path written, or None.
        """
        path = self._path(name)
        if path:
            with atomic_open(path, newline='') as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows(rows)
        return path

    def save_figure(self, fig, name: str) -> Optional[str]:
        """Save a matplotlib figure as PNG and send it to the visualizer.

        Args:
            fig (matplotlib.figure.Figure): Figure with an Agg canvas.
            name (str): File name after the prefix, without ``.png``.

        Returns:
            str, optional: The PNG path, or None.
        """
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        path = self._path(name + '.png')
        if path:
            fig.savefig(path)
        _log_image(f'{self.prefix}_{name}', image)
        return path

    def _path(self, name: str) -> Optional[str]:
        out_dir = self.resolve_out_dir()
        return osp.join(out_dir, f'{self.prefix}_{name}') if out_dir else None


def _log_image(name: str, image: np.ndarray) -> None:
    from mmengine.visualization import Visualizer
    if not Visualizer._instance_dict:
        return
    hub = MessageHub.get_current_instance()
    step = hub.get_info('epoch', 0) or hub.get_info('iter', 0) or 0
    try:
        Visualizer.get_current_instance().add_image(name, image, step=step)
    except Exception as exc:  # a tracker failure must not lose the metric
        print_log(f'could not log figure {name}: {exc!r}', 'current',
                  level=30)


def new_figure(width: float = 6.0, height: float = 4.5):
    """A matplotlib figure on an Agg canvas (no pyplot, no global backend).

    Args:
        width (float): Width in inches. Defaults to 6.0.
        height (float): Height in inches. Defaults to 4.5.

    Returns:
        tuple: ``(figure, axes)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def format_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A plain-text table, right-aligned like sklearn's reports.

    Args:
        header (Sequence[str]): Column names.
        rows (Sequence[Sequence]): Rows; floats are shown with 3 decimals.

    Returns:
        str: The table.
    """
    cells = [[f'{v:.3f}' if isinstance(v, float) else str(v) for v in row]
             for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells))
              for i, h in enumerate(header)]
    lines = [' '.join(str(h).rjust(w) for h, w in zip(header, widths))]
    lines += [' '.join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return '\n'.join(lines)
