"""mmdet's visualization hook, drawing on images as the dataset reads them.

``DetVisualizationHook`` re-reads each image with mmcv's 8-bit decoding, so
an image that ``LoadDomainImageFromFile`` reads with all its bits and an
intensity window (a 12-bit X-ray, a 16-bit fluorescence slide) is drawn
dark or flat by ``tools/test.py --show / --show-dir``, though the model saw
it windowed.
"""
import os.path as osp
from typing import Sequence

import cv2
import mmcv
import numpy as np
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.fileio import get
from mmengine.utils import mkdir_or_exist

from rcnn_plugin.apis.drawing import to_bgr_uint8
from rcnn_plugin.apis.inputs import (
    is_domain_loader,
    read_image,
    split_loaders,
    split_reader,
)
from rcnn_plugin.utils.config_types import type_name

__all__ = ['DomainDetVisualizationHook', 'use_domain_visualization']


@HOOKS.register_module()
class DomainDetVisualizationHook(DetVisualizationHook):
    """``DetVisualizationHook`` that reads images with the split's loader.

    Where the val (test) pipeline starts with ``LoadDomainImageFromFile``,
    every val (test) image drawn is read by that loader, with its bit
    depth, window and colour type, then shown as 8-bit RGB; with any other
    loader it reads images exactly as mmdet's hook does (mmcv,
    ``backend_args``). A ``ConcatDataset`` whose datasets load differently
    is read with its first dataset's loader, with a warning. The arguments
    are ``DetVisualizationHook``'s. ``tools/test.py --show`` and
    ``--show-dir`` switch mmdet's hook to this one when a test dataset's
    pipeline starts with the domain loader; a config selects it with
    ``default_hooks=dict(visualization=dict(type='DomainDetVisualizationHook'))``.
    """

    def before_run(self, runner) -> None:
        """Take the image readers from the val and test pipelines."""
        self._readers = {}
        for split in ('val', 'test'):
            read = split_reader(runner.cfg, split)
            self._readers[split] = None if read is read_image else read

    def before_test(self, runner) -> None:
        """Place ``test_out_dir`` under the run's folder, once."""
        if self.draw and self.test_out_dir is not None:
            self.test_out_dir = osp.join(runner.work_dir, runner.timestamp,
                                         self.test_out_dir)
            mkdir_or_exist(self.test_out_dir)

    def load(self, img_path: str, split: str = 'test') -> np.ndarray:
        """An image to draw on, as ``(H, W, 3)`` uint8 RGB.

        Args:
            img_path (str): The image file.
            split (str): Whose loader reads it, ``'val'`` or ``'test'``.
                Defaults to 'test'.

        Returns:
            np.ndarray: The image.
        """
        read = getattr(self, '_readers', {}).get(split)
        if read is None:  # mmdet's reading
            img_bytes = get(img_path, backend_args=self.backend_args)
            return mmcv.imfrombytes(img_bytes, channel_order='rgb')
        img = read(img_path)
        if img is None:
            raise FileNotFoundError(f'{img_path}: not a decodable image')
        return cv2.cvtColor(to_bgr_uint8(img), cv2.COLOR_BGR2RGB)

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        """Draw the batch's first sample every ``interval`` iterations."""
        step = runner.iter + batch_idx
        if self.draw is False or step % self.interval != 0:
            return
        img_path = outputs[0].img_path
        self._visualizer.add_datasample(
            osp.basename(img_path) if self.show else 'val_img',
            self.load(img_path, 'val'),
            data_sample=outputs[0],
            show=self.show,
            wait_time=self.wait_time,
            pred_score_thr=self.score_thr,
            step=step)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        """Draw (show or save) every sample of the batch."""
        if self.draw is False:
            return
        for data_sample in outputs:
            self._test_index += 1
            img_path = data_sample.img_path
            out_file = None
            if self.test_out_dir is not None:
                out_file = osp.join(self.test_out_dir,
                                    osp.basename(img_path))
            self._visualizer.add_datasample(
                osp.basename(img_path) if self.show else 'test_img',
                self.load(img_path),
                data_sample=data_sample,
                show=self.show,
                wait_time=self.wait_time,
                pred_score_thr=self.score_thr,
                out_file=out_file,
                step=self._test_index)


def use_domain_visualization(cfg: Config) -> bool:
    """Switch mmdet's visualization hook to the domain-aware one if needed.

    Args:
        cfg (Config): A config whose ``default_hooks.visualization`` may be
            mmdet's ``DetVisualizationHook``; changed in place.

    Returns:
        bool: True when a test dataset's pipeline starts with
        ``LoadDomainImageFromFile`` and the hook was switched. The hook is
        named as mmdet's was: by class in a pure-Python config (whose
        ``default_scope`` may be None), else by the scoped name.
    """
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if (not isinstance(hook, dict)
            or type_name(hook.get('type')) != 'DetVisualizationHook'):
        return False
    if not any(isinstance(step, dict) and is_domain_loader(step.get('type'))
               for step in split_loaders(cfg, 'test')):
        return False
    hook['type'] = (DomainDetVisualizationHook
                    if isinstance(hook['type'], type)
                    else 'mmdet.DomainDetVisualizationHook')
    return True
