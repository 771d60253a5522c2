"""ABR's prototype box selection: keep the boxes nearest the class mean.

ABR (Liu et al., ICCV 2023; ``tools/prototype_box_selection.py`` and
``tools/extract_memory.py``, memory type ``mean``, its default) runs the
trained detector on each labelled box, takes its RoI features averaged
over the channels (a ``7 x 7`` map per box), and keeps per class the
boxes whose map is nearest the class mean.

Here each box's map is L2-normalised before the mean and the distances
(the nearest in cosine terms); ABR's released code divides the whole
class's array by one norm, which makes the distance mostly a matter of
the map's size. Ties are broken by the box order.
"""
from typing import Callable, List, Sequence

import mmcv
import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.model import is_model_wrapper

from rcnn_plugin.apis.inputs import inference_pipeline

SELECTION = ('mean: per class, the boxes whose channel-mean RoI feature '
             'map (L2-normalised) is nearest the normalised class mean '
             '(ABR\'s prototype box selection)')


def select_prototypes(features: np.ndarray, labels: Sequence[int],
                      num_classes: int, budget: int) -> List[int]:
    """Per class, the ``budget`` items nearest the class mean.

    Args:
        features (np.ndarray): ``(K, F)`` one feature vector per item.
        labels (Sequence[int]): The class of each item, ``0..C-1``.
        num_classes (int): Number of classes ``C``.
        budget (int): Most items kept per class.

    Returns:
        list[int]: Indices of the kept items, ascending.
    """
    if budget < 0:
        raise ValueError(f'budget must be >= 0, got {budget}')
    labels = np.asarray(labels, dtype=np.int64)
    features = np.asarray(features, dtype=np.float64)
    if len(features) != len(labels):
        raise ValueError(f'{len(features)} feature rows for {len(labels)} '
                         'labels')
    if not len(labels):
        return []
    features = features.reshape(len(labels), -1)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.maximum(norms, 1e-12)
    keep = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) > budget:
            mean = unit[idx].mean(axis=0)
            mean /= max(np.linalg.norm(mean), 1e-12)
            dist = np.linalg.norm(unit[idx] - mean, axis=1)
            idx = idx[np.argsort(dist, kind='stable')[:budget]]
        keep.extend(idx.tolist())
    return sorted(keep)


def _inference_pipeline(pipeline_cfg: Sequence[dict]) -> Compose:
    """The test pipeline for loaded images, without annotation loading
    (rcnn_plugin's :func:`inference_pipeline`)."""
    return inference_pipeline(Compose([dict(s) for s in pipeline_cfg]))


@torch.no_grad()
def roi_feature_maps(model: torch.nn.Module, pipeline_cfg: Sequence[dict],
                     boxes: List[dict]) -> np.ndarray:
    """The channel-mean RoI feature map of each labelled box.

    Args:
        model (torch.nn.Module): A two-stage mmdet detector (or wrapper);
            run in eval mode, its mode is restored.
        pipeline_cfg (Sequence[dict]): Its test pipeline config (image
            loading first; annotation loading is dropped).
        boxes (list[dict]): ``source`` (image path) and ``box``
            (``x1, y1, x2, y2`` in the source's pixels) per box.

    Returns:
        np.ndarray: ``(K, S * S)``, ``S`` the RoI extractor's output size.
    """
    model = model.module if is_model_wrapper(model) else model
    pipeline = _inference_pipeline(pipeline_cfg)
    device = next(model.parameters()).device
    out = [None] * len(boxes)
    training = model.training
    model.eval()
    try:
        for source in sorted({b['source'] for b in boxes}):
            rows = [i for i, b in enumerate(boxes) if b['source'] == source]
            img = mmcv.imread(source, channel_order='bgr')
            packed = pipeline(dict(img=img, img_id=0))
            data = model.data_preprocessor(
                dict(inputs=[packed['inputs']],
                     data_samples=[packed['data_samples']]), False)
            feats = model.extract_feat(data['inputs'])
            scale = np.asarray(packed['data_samples'].metainfo.get(
                'scale_factor', (1.0, 1.0)))  # (w, h); none without Resize
            xyxy = np.asarray([boxes[i]['box'] for i in rows]) * np.tile(
                scale, 2)
            rois = torch.cat([torch.zeros(len(rows), 1),
                              torch.as_tensor(xyxy, dtype=torch.float32)], 1)
            extractor = model.roi_head.bbox_roi_extractor
            maps = extractor(feats[:extractor.num_inputs], rois.to(device))
            maps = maps.mean(dim=1).flatten(1).cpu().numpy()
            for i, row in zip(rows, maps):
                out[i] = row
    finally:
        model.train(training)
    return np.stack(out) if out else np.zeros((0, 0))


def prototype_selector(model: torch.nn.Module, pipeline_cfg: Sequence[dict]
                       ) -> Callable[[List[dict], int, int], List[int]]:
    """A ``select(boxes, num_classes, budget)`` for
    :func:`build_replay_memory`: ABR's prototype selection under ``model``.

    Args:
        model (torch.nn.Module): The detector whose RoI features are used.
        pipeline_cfg (Sequence[dict]): Its test pipeline config.

    Returns:
        Callable: Boxes (``source``, ``box``, ``label``), the number of
        classes and the budget to the kept indices.
    """
    def select(boxes: List[dict], num_classes: int,
               budget: int) -> List[int]:
        labels = [b['label'] for b in boxes]
        if all(labels.count(c) <= budget for c in set(labels)):
            return list(range(len(boxes)))  # nothing to choose
        return select_prototypes(roi_feature_maps(model, pipeline_cfg, boxes),
                                 labels, num_classes, budget)
    select.description = SELECTION
    return select
