"""Slice-aided evaluation: a test loop that predicts with SAHI slicing.

The loop walks the test dataloader as mmengine's ``TestLoop`` does, but
predicts each image from its original file with
:class:`~rcnn_plugin.apis.slicing.SlicedPredictor` around the runner's
model, then hands the data samples (ground truth and metainfo from the
test pipeline, predictions in the original image's pixels) to the test
evaluator. Every metric of the config (``CocoMetric`` with AP_small, ours)
works unchanged::

    test_cfg = dict(type='SlicedTestLoop', slice_size=512, overlap=0.2,
                    merge='nms', match_metric='IOU', full_image=False)

``tools/test.py CONFIG CKPT --slice 512 --overlap 0.2`` sets it.
"""
from typing import Dict, List, Sequence, Union

import numpy as np
import torch
from mmdet.registry import LOOPS
from mmengine.dataset import Compose, pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from torch.utils.data import DataLoader


class ModelPredictor:
    """Predict loaded images with a built detector and a test pipeline.

    Args:
        model (torch.nn.Module): The detector (or a model wrapper).
        pipeline (Compose): A test pipeline for loaded images
            (:func:`~rcnn_plugin.apis.inputs.inference_pipeline`).
        classes (Sequence[str]): Class names.
    """

    def __init__(self, model: torch.nn.Module, pipeline: Compose,
                 classes: Sequence[str]) -> None:
        self.model, self.pipeline = model, pipeline
        self.classes = list(classes)

    @torch.no_grad()
    def predict(self, images: List[np.ndarray]) -> list:
        """Predict a batch of BGR images.

        Args:
            images (List[np.ndarray]): ``(H, W, 3)`` uint8 BGR images.

        Returns:
            list[InstanceData]: Per image, boxes in its pixels.
        """
        if not images:
            return []
        data = [self.pipeline(dict(img=img, img_id=i))
                for i, img in enumerate(images)]
        return [s.pred_instances
                for s in self.model.test_step(pseudo_collate(data))]


def _base_dataset(dataset):
    """The innermost dataset that owns the pipeline: mmengine's wrappers
    keep it in ``dataset``, rcnn_plugin's class wrappers in ``source``."""
    while not hasattr(dataset, 'pipeline'):
        inner = getattr(dataset, 'dataset', None) or getattr(
            dataset, 'source', None)
        if inner is None and hasattr(dataset, 'datasets'):
            raise TypeError(
                f'SlicedTestLoop: the test split is a '
                f'{type(dataset).__name__} of {len(dataset.datasets)} '
                'datasets, each with its pipeline; test them one at a time')
        if inner is None:
            raise TypeError(
                f'SlicedTestLoop: {type(dataset).__name__} has no pipeline '
                'and wraps no dataset (.dataset / .source)')
        dataset = inner
    return dataset


@LOOPS.register_module()
class SlicedTestLoop(TestLoop):
    """Test loop with sliced (SAHI) prediction of the original images.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Test dataloader; its samples carry
            ``img_path`` (mmdet's default ``PackDetInputs`` meta keys).
        evaluator (Evaluator | dict | list): Test evaluator.
        fp16 (bool): Must be False: the sliced forward runs in fp32, so
            True is an error rather than ignored. The argument of
            mmengine's ``TestLoop``. Defaults to False.
        slice_size (int): Slice side in pixels. Defaults to 512.
        overlap (float): Overlap ratio in [0, 1). Defaults to 0.2.
        merge (str): ``'nms'``, ``'greedynmm'`` or ``'nmm'``.
            Defaults to 'nms'.
        full_image (bool): Add a full-image pass. Defaults to False.
        **kwargs: Other arguments of
            :class:`~rcnn_plugin.apis.slicing.SlicedPredictor`
            (``match_metric``, ``match_threshold``, ``batch_size``,
            ``max_per_img``...).
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False, slice_size: int = 512,
                 overlap: float = 0.2, merge: str = 'nms',
                 full_image: bool = False, **kwargs) -> None:
        from rcnn_plugin.apis.inputs import read_image
        from rcnn_plugin.apis.slicing import check_slice_args, import_sahi
        check_slice_args(slice_size, overlap)
        if fp16:
            raise ValueError('SlicedTestLoop runs the slices in fp32: '
                             'test_cfg.fp16=True would be ignored; drop it')
        import_sahi()
        super().__init__(runner, dataloader, evaluator, fp16)
        self.sliced_kwargs = dict(slice_size=slice_size, overlap=overlap,
                                  merge=merge, full_image=full_image,
                                  **kwargs)
        self.predictor = None
        self.read_image = read_image  # the dataset's loader's, in run()

    def run(self) -> dict:
        """Predict every test image sliced and evaluate.

        Returns:
            dict: The evaluator's metrics.
        """
        from rcnn_plugin.apis.inputs import image_reader, inference_pipeline
        from rcnn_plugin.apis.slicing import (
            NOT_SLICED_WITHOUT_RPN,
            SlicedPredictor,
        )
        model = self.runner.model
        module = model.module if is_model_wrapper(model) else model
        if not getattr(module, 'with_rpn', True):
            raise ValueError(f'SlicedTestLoop: {type(module).__name__} has '
                             f'no RPN: {NOT_SLICED_WITHOUT_RPN}')
        dataset = _base_dataset(self.dataloader.dataset)
        # The classes the loader yields (a class wrapper renames them).
        meta = getattr(module, 'dataset_meta', None) or \
            self.dataloader.dataset.metainfo
        classes = meta['classes']
        base = ModelPredictor(model, inference_pipeline(dataset.pipeline),
                              classes)
        self.read_image = image_reader(dataset.pipeline.transforms[0])
        self.predictor = SlicedPredictor(base, **self.sliced_kwargs)
        return super().run()

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> None:
        """Predict one batch sliced and feed the evaluator.

        Args:
            idx (int): Index of the batch.
            data_batch (dict): A batch from the test dataloader.
        """
        self.runner.call_hook('before_test_iter', batch_idx=idx,
                              data_batch=data_batch)
        samples = data_batch['data_samples']
        images = []
        for sample in samples:
            path = sample.metainfo.get('img_path')
            image = self.read_image(path) if path else None
            if image is None:
                raise ValueError(
                    f'sliced testing reads each image from its img_path; '
                    f'sample {sample.metainfo.get("img_id")} has '
                    f'img_path={path!r} (add img_path to PackDetInputs '
                    'meta_keys)')
            images.append(image)
        for sample, pred in zip(samples, self.predictor.predict(images)):
            sample.pred_instances = pred
        self.evaluator.process(data_samples=samples, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=samples)
