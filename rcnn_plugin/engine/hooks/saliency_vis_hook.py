"""Saliency maps of fixed validation images, logged every N epochs."""
from typing import List, Optional

import cv2
import numpy as np
from mmdet.registry import HOOKS
from mmdet.utils import get_test_pipeline_cfg
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop

from rcnn_plugin.apis.explain import (
    METHODS,
    Explainer,
    saliency_grid,
    saliency_panels,
)
from rcnn_plugin.apis.explain.cam import require_grad_cam
from rcnn_plugin.apis.inputs import image_reader

__all__ = ['SaliencyVisHook']


def _validations_so_far(progress: int, interval: int, begin: int,
                        last: Optional[int]) -> int:
    """How many validations mmengine's train loops have run by ``progress``
    (epochs or iterations): one at each multiple of ``interval`` from
    ``begin`` on, and one at the ``last`` step whatever the interval."""
    count = max(0, progress // interval - (max(begin, 1) - 1) // interval)
    if progress == last and progress % interval and progress >= begin:
        count += 1
    return count


@HOOKS.register_module()
class SaliencyVisHook(Hook):
    """Log per-detection saliency maps of fixed val images to the visualizer.

    After every ``interval``-th validation, the first ``num_images``
    images of the val dataset (the same ones each time, read from their
    files) are explained with ``method``: each detection with ``score >=
    score_thr`` (at most ``max_dets`` per image) becomes a panel (its map
    over the image, its box, class and score), and the panels are laid out
    in one image logged as ``tag`` through ``runner.visualizer.add_image``,
    so every visualizer backend (local files, TensorBoard, W&B) gets it.
    The model is explained in eval mode with its parameters frozen, so
    training is unaffected; an epoch whose images have no detection is
    logged and skipped.

    Args:
        interval (int): Every this many validations, counted from the
            progress as the train loop runs them (every ``val_interval``
            from ``val_begin``, and the last epoch or iteration), so a
            resumed run counts on. Defaults to 1.
        num_images (int): Val images explained. Defaults to 4.
        method (str): ``eigencam``, ``gradcam``, ``odam`` or ``drise``.
            Defaults to 'eigencam' (no backward pass: the cheapest).
        layer (str): Hooked module of the CAM methods. Defaults to 'neck'.
        score_thr (float): Lowest score explained. Defaults to 0.3.
        max_dets (int): Detections per image. Defaults to 3.
        masks (int): D-RISE mask budget. Defaults to 200.
        seed (int): D-RISE seed. Defaults to 0.
        panel_height (int): Height of a panel in pixels. Defaults to 256.
        tag (str): Name of the logged image. Defaults to 'saliency'.
    """

    # before EMAHook's after_val_epoch (49 in mmdet's configs) puts the
    # live weights back: the panels explain the weights just evaluated
    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1, num_images: int = 4,
                 method: str = 'eigencam', layer: str = 'neck',
                 score_thr: float = 0.3, max_dets: int = 3,
                 masks: int = 200, seed: int = 0, panel_height: int = 256,
                 tag: str = 'saliency') -> None:
        if interval < 1 or num_images < 1 or max_dets < 1:
            raise ValueError(f'interval, num_images and max_dets must be '
                             f'>= 1, got {interval}, {num_images}, '
                             f'{max_dets}')
        if method not in METHODS:
            raise ValueError(f'unknown method {method!r}; valid methods: '
                             f'{", ".join(METHODS)}')
        if method == 'drise' and masks <= 0:
            raise ValueError(f'D-RISE needs a mask budget > 0, got {masks}')
        if method != 'drise':
            require_grad_cam()
        self.interval, self.num_images = interval, num_images
        self.kwargs = dict(method=method, layer=layer, score_thr=score_thr,
                           max_dets=max_dets, masks=masks, seed=seed)
        self.panel_height, self.tag = panel_height, tag
        self._images: Optional[List[np.ndarray]] = None
        self._evaluations = 0

    def _model(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_run(self, runner) -> None:
        """Check the layer name against the model before training starts.

        Args:
            runner (Runner): The runner.
        """
        Explainer(self._model(runner), runner.cfg, **self.kwargs)

    def _val_images(self, runner) -> List[np.ndarray]:
        if self._images is None:
            dataset = runner.val_dataloader.dataset
            count = min(self.num_images, len(dataset))
            read = image_reader(get_test_pipeline_cfg(runner.cfg)[0])
            images = [read(dataset.get_data_info(i)['img_path'])
                      for i in range(count)]
            self._images = [im for im in images if im is not None]
        return self._images

    def draw(self, runner) -> Optional[np.ndarray]:
        """The grid of panels of the fixed images, or None if no detection.

        Args:
            runner (Runner): The runner.

        Returns:
            np.ndarray, optional: ``(H, W, 3)`` uint8 BGR.
        """
        model = self._model(runner)
        explainer = Explainer(model, runner.cfg, **self.kwargs)
        classes = model.dataset_meta['classes'] if getattr(
            model, 'dataset_meta', None) else \
            runner.val_dataloader.dataset.metainfo['classes']
        panels = []
        for image in self._val_images(runner):
            result = explainer.explain(image)
            panels += saliency_panels(image, result.detections, result.maps,
                                      classes, self.panel_height)
        return saliency_grid(panels) if panels else None

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Explain and log, every ``interval`` epochs (main process).

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): This evaluation's metrics (unused).
                Defaults to None.
        """
        loop = getattr(runner, '_train_loop', None)  # a dict if not built
        if isinstance(getattr(loop, 'val_interval', None), int):
            # the validations so far, from the progress: exact on resume
            by_iter = isinstance(loop, IterBasedTrainLoop)
            count = _validations_so_far(
                runner.iter if by_iter else runner.epoch, loop.val_interval,
                getattr(loop, 'val_begin', 1),
                getattr(loop, 'max_iters' if by_iter else 'max_epochs', None))
        else:  # a validation or test run outside training
            self._evaluations += 1
            count = self._evaluations
        if count % self.interval or not is_main_process():
            return
        # the step of the logs: epochs, or iterations for an
        # iteration-based run (mmengine's log_processor.by_epoch)
        step = runner.epoch if getattr(runner.log_processor, 'by_epoch',
                                       True) else runner.iter
        grid = self.draw(runner)
        if grid is None:
            print_log(f'SaliencyVisHook: no detection with score >= '
                      f"{self.kwargs['score_thr']} on the "
                      f'{len(self._val_images(runner))} val images at '
                      f'step {step}; nothing logged', 'current')
            return
        runner.visualizer.add_image(
            self.tag, cv2.cvtColor(grid, cv2.COLOR_BGR2RGB), step=step)
