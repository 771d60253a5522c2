"""Batched prediction on loaded images, on top of mmdet's DetInferencer.

``DetInferencer`` does the preprocessing, batching and forward pass. This
module adds what the inference tool needs around it: class names from the
config when the checkpoint has none, the test pipeline also of a wrapped
test dataset, a score and class filter, and conversion to COCO results
(boxes, scores, labels, RLE masks).
"""
import copy
import functools
import logging
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from rcnn_plugin.utils.checkpoint_io import check_checkpoint_fits

from .inputs import image_reader, read_image


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of a binary mask, with ``counts`` as a str (JSON-ready).

    Args:
        mask (np.ndarray): ``(H, W)`` bool or 0/1 mask.

    Returns:
        dict: ``{'size': [H, W], 'counts': str}``.
    """
    from pycocotools import mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'tensor'):
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def instances_to_dicts(pred_instances,
                       score_thr: float = 0.0,
                       keep_labels: Optional[Sequence[int]] = None,
                       precise: bool = False) -> List[Dict]:
    """Filtered detections of one image as plain dicts.

    Args:
        pred_instances (InstanceData): ``bboxes`` ``(N, 4)`` as
            ``(x1, y1, x2, y2)`` pixels of the original image, ``scores``,
            ``labels`` and optionally ``masks`` ``(N, H, W)``.
        score_thr (float): Keep ``score >= score_thr``. Defaults to 0.0.
        keep_labels (Sequence[int], optional): Keep only these labels.
            Defaults to None (all).
        precise (bool): Keep boxes and scores as computed; False rounds
            them for JSON (boxes to 0.01 px, scores to 1e-5).
            Defaults to False.

    Returns:
        List[dict]: ``bbox_xyxy``, ``score``, ``label`` and, with masks,
        ``segmentation`` (COCO RLE), in descending score order.
    """
    def rounded(value: float, digits: int) -> float:
        return value if precise else round(value, digits)

    scores = _numpy(pred_instances.scores).astype(float).reshape(-1)
    labels = _numpy(pred_instances.labels).astype(int).reshape(-1)
    boxes = _numpy(pred_instances.bboxes).astype(float).reshape(-1, 4)
    keep = scores >= score_thr
    if keep_labels is not None:
        keep &= np.isin(labels, list(keep_labels))
    masks = (_numpy(pred_instances.masks)
             if 'masks' in pred_instances else None)
    out = []
    for i in np.flatnonzero(keep)[np.argsort(-scores[keep],
                                             kind='mergesort')]:
        det = dict(bbox_xyxy=[rounded(v, 2) for v in boxes[i].tolist()],
                   score=rounded(float(scores[i]), 5), label=int(labels[i]))
        if masks is not None:
            det['segmentation'] = encode_mask(masks[i])
        out.append(det)
    return out


def to_coco_results(dets: List[Dict], image_id: int) -> List[Dict]:
    """COCO results entries (``loadRes`` format, category id = label + 1).

    Args:
        dets (List[dict]): Output of :func:`instances_to_dicts`.
        image_id (int): Image id.

    Returns:
        List[dict]: ``image_id``, ``category_id``, ``bbox`` (x, y, w, h),
        ``score`` and ``segmentation`` when present.
    """
    results = []
    for det in dets:
        x1, y1, x2, y2 = det['bbox_xyxy']
        entry = dict(image_id=image_id, category_id=det['label'] + 1,
                     bbox=[x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                     score=det['score'])
        if 'segmentation' in det:
            entry['segmentation'] = det['segmentation']
        results.append(entry)
    return results


def _dataset_files(cfg: Mapping) -> str:
    """``type``, ``data_root``, ``ann_file`` and ``data_prefix`` of a
    dataset config (of its first inner dataset for a wrapper), as text."""
    while 'data_root' not in cfg and 'ann_file' not in cfg and (
            cfg.get('dataset') or cfg.get('datasets')):
        cfg = cfg.get('dataset') or cfg['datasets'][0]
    return ', '.join(f'{key} {cfg[key]}' for key in (
        'type', 'data_root', 'ann_file', 'data_prefix') if cfg.get(key))


@functools.cache
def _inferencer_class() -> type:
    """mmdet's ``DetInferencer``, reading the test pipeline also inside
    dataset wrappers (``ClassSubsetDataset``, ``SeededSplitDataset``,
    ``ConcatDataset``...); mmdet reads ``test_dataloader.dataset.pipeline``
    only."""
    from mmdet.apis import DetInferencer
    from mmdet.utils import get_test_pipeline_cfg

    class WrapperAwareInferencer(DetInferencer):

        def _init_pipeline(self, cfg):
            pipeline = copy.deepcopy(get_test_pipeline_cfg(cfg))
            self.image_reader = image_reader(pipeline[0] if pipeline else None)
            domain = self.image_reader is not read_image
            if domain:  # it reads the files; arrays enter as mmdet's do
                pipeline[0] = dict(type='LoadImageFromFile',
                                   to_float32=pipeline[0].get('to_float32',
                                                              False))
            if domain or 'pipeline' not in cfg.test_dataloader.dataset:
                cfg = copy.deepcopy(cfg)
                cfg.test_dataloader.dataset = dict(pipeline=pipeline)
            return super()._init_pipeline(cfg)
    return WrapperAwareInferencer


class Predictor:
    """A detector from a config and an optional checkpoint.

    Args:
        config (str): Config file.
        checkpoint (str, optional): Checkpoint; None keeps the config's
            initialisation (for throughput measurements). Defaults to None.
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
            Defaults to 'cpu'.
    """

    def __init__(self, config: str, checkpoint: Optional[str] = None,
                 device: str = 'cpu') -> None:
        import warnings
        with warnings.catch_warnings():
            # Without weights DetInferencer warns and assumes COCO classes;
            # the classes are fixed below from the config's dataset.
            warnings.simplefilter('ignore')
            self.inferencer = _inferencer_class()(
                model=config, weights=checkpoint, device=device,
                show_progress=False)
        self.model = self.inferencer.model
        recorded = True
        if checkpoint is not None and '://' not in checkpoint:
            # mmengine loaded it leniently: another class count would leave
            # a random classifier behind one warning.
            meta = check_checkpoint_fits(self.model, checkpoint)
            # where DetInferencer reads them: dataset_meta (any case of
            # its keys) or mmdet 2.x's top-level CLASSES
            dataset_meta = {k.lower(): v for k, v in
                            (meta.get('dataset_meta') or {}).items()}
            recorded = bool(dataset_meta.get('classes')
                            or meta.get('CLASSES'))
            if not recorded:  # DetInferencer assumed COCO's 80 classes
                print_log(f'{checkpoint} records no class names; the '
                          "config's dataset classes are used", 'current',
                          level=logging.WARNING)
        self.adapter_bank = None  # made by load_adapter
        if checkpoint is None or not recorded or 'classes' not in (
                self.model.dataset_meta or {}):
            self.model.dataset_meta = self._config_meta()

    def _lazy_config_meta(self) -> dict:
        """The test dataset's metainfo without reading its files."""
        cfg = copy.deepcopy(self.inferencer.cfg.test_dataloader.dataset)
        cfg['lazy_init'] = True
        return dict(DATASETS.build(cfg).metainfo)

    def _config_meta(self) -> dict:
        """The test dataset's metainfo. Classes that only its files give (a
        YOLO names file, a CSV's label column) are read from them: the lazy
        metainfo of such a dataset has none."""
        meta = self._lazy_config_meta()
        if meta.get('classes'):
            return meta
        cfg = copy.deepcopy(self.inferencer.cfg.test_dataloader.dataset)
        cfg['lazy_init'] = False
        try:
            return dict(DATASETS.build(cfg).metainfo)
        except OSError as err:
            raise FileNotFoundError(
                f'config {self.inferencer.cfg.filename} takes its class '
                f'names from the files of its test dataset '
                f'({_dataset_files(cfg)}), which cannot be read: {err}. Put '
                'the dataset there (a relative data_root is from the '
                'working directory), or name the classes in the config: '
                'metainfo=dict(classes=(...)) on the test dataset, in label '
                'order') from err

    def load_adapter(self, path: str, name: Optional[str] = None) -> str:
        """Add an adapter checkpoint and make it the active one.

        The base weights stay loaded; later :meth:`switch_adapter` calls
        move between the adapters added (see
        :class:`~rcnn_plugin.models.peft.adapter_bank.AdapterBank`).

        Args:
            path (str): An adapter checkpoint of this model's PEFT config.
            name (str, optional): Its name; the file name without extension
                by default. Defaults to None.

        Returns:
            str: The adapter's name.

        Raises:
            ValueError: If it was trained on another architecture or
                against another base checkpoint (names both hashes).
        """
        if self.adapter_bank is None:
            from rcnn_plugin.models.peft.adapter_bank import AdapterBank
            self.adapter_bank = AdapterBank(self.model)
            self._base_meta = self.model.dataset_meta
        name = self.adapter_bank.add(path, name)
        self.switch_adapter(name)
        return name

    def switch_adapter(self, name: Optional[str]) -> float:
        """Switch to an added adapter in place; None: the base model.

        Args:
            name (str, optional): The name :meth:`load_adapter` returned.

        Returns:
            float: Seconds the switch took.
        """
        if self.adapter_bank is None:
            raise KeyError(f'no adapter named {name!r}: none loaded yet')
        seconds = self.adapter_bank.switch(name)
        # the adapter's class names (recorded since AdapterCheckpointHook
        # copies dataset_meta), else the base checkpoint's
        meta = (self.adapter_bank.adapters[name]['meta'].get('dataset_meta')
                if name is not None else None)
        self.model.dataset_meta = meta if meta and meta.get(
            'classes') else self._base_meta
        return seconds

    def read(self, path: str) -> Optional[np.ndarray]:
        """Read an image file as the config's test pipeline loads it.

        Args:
            path (str): Image file.

        Returns:
            np.ndarray, optional: The image (BGR; with rcnn_plugin's
            ``LoadDomainImageFromFile``, after its intensity window), or
            None (logged) if it does not decode.
        """
        return self.inferencer.image_reader(path)

    @property
    def classes(self) -> List[str]:
        """Class names of the model."""
        return list(self.model.dataset_meta['classes'])

    @property
    def needs_proposals(self) -> bool:
        """True for a detector without RPN (Fast R-CNN): :meth:`predict`
        then needs the proposals of each image."""
        return not getattr(self.model, 'with_rpn', True)

    def predict(self, images: List[np.ndarray],
                proposals: Optional[Sequence] = None) -> list:
        """Predict a batch of BGR images.

        Args:
            images (List[np.ndarray]): ``(H, W, 3)`` uint8 BGR images.
            proposals (Sequence, optional): Fast R-CNN only, one entry per
                image: ``(R, 4)`` boxes ``x1, y1, x2, y2`` in the image's
                pixels (R may be 0), or a dict / ``InstanceData`` with
                ``bboxes`` and optional ``scores`` (an entry of a proposal
                file of tools/generate_proposals.py). They go through the
                test pipeline's ``LoadProposals`` and resize, as in
                ``tools/test.py``. Defaults to None.

        Returns:
            list[InstanceData]: ``pred_instances`` per image, boxes in the
            input image's pixels.

        Raises:
            ValueError: Without ``proposals`` for a detector without RPN,
                with them for one with RPN, or with a count other than the
                number of images.
        """
        if not images:
            return []
        inputs = list(images)
        if proposals is not None or self.needs_proposals:
            inputs = [dict(img=img, proposals=props) for img, props in
                      zip(images, self._check_proposals(images, proposals))]
        out = self.inferencer(inputs, batch_size=len(images),
                              return_datasamples=True, no_save_vis=True)
        return [s.pred_instances for s in out['predictions']]

    def _check_proposals(self, images: List[np.ndarray],
                         proposals: Optional[Sequence]) -> List[dict]:
        """Proposals as ``LoadProposals`` reads them, or a refusal."""
        if proposals is None:
            raise ValueError(
                'this detector has no RPN (Fast R-CNN): it needs '
                'precomputed proposals for each image (a proposal file of '
                'tools/generate_proposals.py), and none were given')
        if not self.needs_proposals:
            raise ValueError('proposals given, but this detector has its '
                             'own RPN; proposals are for Fast R-CNN')
        if len(proposals) != len(images):
            raise ValueError(f'{len(proposals)} proposal entries for '
                             f'{len(images)} images; give one per image')
        out = []
        for props in proposals:
            if isinstance(props, Mapping):
                props = dict(props)
            elif hasattr(props, 'bboxes'):  # InstanceData
                props = props.to_dict()
            else:
                props = dict(bboxes=props)
            entry = dict(bboxes=_numpy(props['bboxes']).astype(
                np.float32).reshape(-1, 4))
            if props.get('scores') is not None:
                entry['scores'] = _numpy(props['scores']).astype(
                    np.float32).reshape(-1)
            out.append(entry)
        return out
