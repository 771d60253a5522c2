"""The export's self-check (ONNX backends against PyTorch on images) and
the int8 calibration data."""
import copy
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import DATASETS

from rcnn_plugin.deployment import compare_detections

from .predictor import instances_to_dicts

__all__ = ['calibration_feeds', 'capture_input', 'dataset_image_paths',
           'dataset_samples', 'predict_dicts', 'self_check']


def dataset_samples(cfg, split: str = 'test', num: Optional[int] = None,
                    ) -> List[Dict]:
    """Image files of a dataset split of a config, with their proposals.

    Args:
        cfg (Config): The config.
        split (str): ``'test'``, ``'val'`` or ``'train'``.
            Defaults to 'test'.
        num (int, optional): The first ``num`` images. Defaults to None
            (all).

    Returns:
        List[dict]: ``img_path`` and, when the split has a
        ``proposal_file`` (Fast R-CNN), ``proposals`` (as read from it:
        ``bboxes`` ``(R, 4)`` in original image pixels, ``scores``).
    """
    from mmengine.registry import init_default_scope

    import rcnn_plugin.datasets  # noqa: F401  (registers the datasets)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
    if 'pipeline' in ds_cfg:  # a wrapper (ClassSubsetDataset...) has none
        ds_cfg['pipeline'] = []
    dataset = DATASETS.build(ds_cfg)
    count = len(dataset) if num is None else min(num, len(dataset))
    infos = [dataset.get_data_info(i) for i in range(count)]
    return [{k: info[k] for k in ('img_path', 'proposals') if k in info}
            for info in infos]


def dataset_image_paths(cfg, split: str = 'test', num: Optional[int] = None,
                        ) -> List[str]:
    """Image files of a dataset split of a config.

    Args:
        cfg (Config): The config.
        split (str): ``'test'``, ``'val'`` or ``'train'``.
            Defaults to 'test'.
        num (int, optional): The first ``num`` images. Defaults to None
            (all).

    Returns:
        List[str]: Paths.
    """
    return [s['img_path'] for s in dataset_samples(cfg, split, num)]


def _predict(predictor, images: List[np.ndarray],
             proposals: Optional[Sequence] = None) -> list:
    """``predictor.predict``, passing ``proposals`` only when given."""
    if proposals is None:
        return predictor.predict(images)
    return predictor.predict(images, proposals=proposals)


def predict_dicts(predictor, images: List[np.ndarray],
                  precise: bool = True,
                  proposals: Optional[Sequence] = None) -> List[List[Dict]]:
    """Detections per image as dicts (score-sorted), one image at a time.

    Args:
        predictor (Predictor): A predictor of any backend.
        images (List[np.ndarray]): BGR images.
        precise (bool): Boxes and scores as computed (float32), not
            rounded for JSON as ``tools/infer.py`` writes them.
            Defaults to True.
        proposals (Sequence, optional): Fast R-CNN: the proposals of each
            image (see :meth:`Predictor.predict`). Defaults to None.

    Returns:
        List[List[dict]]: :func:`instances_to_dicts` per image.
    """
    if proposals is None:
        proposals = [None] * len(images)
    return [instances_to_dicts(
        _predict(predictor, [img], None if p is None else [p])[0],
        precise=precise) for img, p in zip(images, proposals)]


def capture_input(predictor, image: np.ndarray,
                  proposals: Optional[Any] = None):
    """The preprocessed ``(1, 3, H, W)`` tensor the model sees for
    ``image`` (mmdet's pipeline and data preprocessor).

    Args:
        predictor (Predictor): The PyTorch predictor.
        image (np.ndarray): A BGR image.
        proposals (Any, optional): Fast R-CNN: the image's proposals (see
            :meth:`Predictor.predict`). Defaults to None.

    Returns:
        Tensor: The model input.
    """
    model, seen = predictor.model, {}
    original = model.extract_feat

    def extract_feat(batch_inputs):
        seen['image'] = batch_inputs
        return original(batch_inputs)
    model.extract_feat = extract_feat
    try:
        _predict(predictor, [image],
                 None if proposals is None else [proposals])
    finally:
        del model.extract_feat
    return seen['image']


def self_check(reference: List[List[Dict]], predictor,
               images: List[np.ndarray], min_match: float = 0.95,
               proposals: Optional[Sequence] = None) -> Dict:
    """Run ``predictor`` on ``images`` and compare with ``reference``.

    Args:
        reference (List[List[dict]]): PyTorch detections per image.
        predictor (Predictor): The ONNX backend predictor.
        images (List[np.ndarray]): The same images.
        min_match (float): Least match fraction of every image.
            Defaults to 0.95.
        proposals (Sequence, optional): Fast R-CNN: the proposals of each
            image, the same as for ``reference``. Defaults to None.

    Returns:
        dict: :func:`compare_detections` plus ``backend``; the box and
        score differences are those of the unrounded outputs (use
        ``predict_dicts(..., precise=True)`` for ``reference``).

    Raises:
        RuntimeError: When an image matches less than ``min_match``, or
            neither backend detected anything on any image (nothing was
            compared).
    """
    report = compare_detections(reference, predict_dicts(
        predictor, images, proposals=proposals))
    report['backend'] = getattr(predictor, 'backend', 'pytorch')
    if images and not report['images_with_detections']:
        raise RuntimeError(
            f"neither PyTorch nor {report['backend']} detected anything on "
            f'the {len(images)} check image(s), so nothing was compared; '
            'check on images with objects (--check-images) with a trained '
            'checkpoint')
    worst = min(report['per_image'], default=1.0)
    if worst < min_match:
        raise RuntimeError(
            f"{report['backend']} detections differ from PyTorch's: worst "
            f'image match fraction {worst:.3f} < {min_match} (IoU > 0.99 '
            f"and |score diff| < 1e-3); mean {report['match_fraction']:.3f},"
            f" max box diff {report['max_box_diff']:.4f} px, max score diff "
            f"{report['max_score_diff']:.2e}; per image "
            f"{[round(f, 3) for f in report['per_image']]}")
    return report


def calibration_feeds(config: str, onnx: str,
                      images: List[np.ndarray]) -> Dict[str, list]:
    """Inputs of each graph on ``images`` (fp32 ONNX Runtime run).

    Args:
        config (str): Config file of the export.
        onnx (str): Graph ``features`` file.
        images (List[np.ndarray]): BGR calibration images.

    Returns:
        dict: Graph name to a list of input lists (float32 arrays).
    """
    from .onnx_predictor import OnnxPredictor
    record: Dict[str, list] = {}
    predictor = OnnxPredictor(config, onnx, 'onnxruntime', record=record)
    for image in images:
        predictor.predict([image])
    return record
