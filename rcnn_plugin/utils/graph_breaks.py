"""Graph breaks of ``torch.compile`` on a detector (``torch._dynamo.explain``).

Dynamo traces the detector's ``forward`` (after the data preprocessor) on a
fixed synthetic batch and reports how many graphs it cut the code into and
why; nothing is compiled. The whole detector breaks at its data-dependent
steps (mmdet issue #11050), the backbone and the neck should not break,
which is why :class:`~rcnn_plugin.engine.CompileBackboneNeckHook` compiles
only those. A frame that dynamo fails to trace with an internal error
(torch 2.14 on the served NMS kernel) runs eagerly and is not counted, so
the count is a lower bound.
"""
from typing import Dict, Tuple

import torch
from torch import nn

PARTS = ('detector', 'backbone', 'neck')


def _reasons(explain_output, limit: int) -> list:
    reasons = []
    for item in getattr(explain_output, 'break_reasons', [])[:limit]:
        reason = str(getattr(item, 'reason', item)).strip().splitlines()
        frame = ''
        stack = getattr(item, 'user_stack', None) or []
        if stack:
            frame = f' at {stack[-1].filename}:{stack[-1].lineno}'
        reasons.append((reason[0] if reason else '?') + frame)
    return reasons


def count_graph_breaks(model: nn.Module, batch: dict,
                       mode: str = 'predict', part: str = 'detector',
                       max_reasons: int = 20) -> Dict[str, object]:
    """Count the graph breaks of a detector (or its backbone / neck).

    Args:
        model (nn.Module): An mmdet detector (with a data preprocessor).
        batch (dict): ``inputs`` and ``data_samples`` as a data loader
            yields them (e.g. ``rcnn_plugin.utils.benchmark.
            synthetic_batch``).
        mode (str): ``'predict'`` (eval mode, no gradients) or ``'loss'``
            (train mode). Defaults to 'predict'.
        part (str): ``'detector'`` (the whole ``forward``), ``'backbone'``
            or ``'neck'``. Defaults to 'detector'.
        max_reasons (int): Break reasons kept. Defaults to 20.

    Returns:
        Dict[str, object]: ``graph_breaks`` (int), ``graphs`` (int),
        ``ops`` (int), ``reasons`` (list of str), ``mode`` and ``part``.
    """
    if mode not in ('predict', 'loss'):
        raise ValueError(f"mode must be 'predict' or 'loss', got {mode!r}")
    if part not in PARTS:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}')
    import torch._dynamo as dynamo
    model.train(mode == 'loss')
    data = model.data_preprocessor(batch, mode == 'loss')
    inputs, samples = data['inputs'], data['data_samples']
    fn, args = model, (inputs, samples, mode)
    if part != 'detector':
        feats = model.backbone(inputs)
        fn, args = ((model.backbone, (inputs, )) if part == 'backbone'
                    else (model.neck, (feats, )))
    dynamo.reset()
    # A frame that dynamo cannot trace at all (an internal error) runs
    # eagerly instead of aborting the count.
    with torch.set_grad_enabled(mode == 'loss'), dynamo.config.patch(
            suppress_errors=True):
        out = dynamo.explain(fn)(*args)
    dynamo.reset()
    return dict(graph_breaks=int(out.graph_break_count),
                graphs=int(out.graph_count), ops=int(out.op_count),
                reasons=_reasons(out, max_reasons), mode=mode, part=part)


def detector_graph_breaks(cfg, img_hw: Tuple[int, int] = (320, 320),
                          batch_size: int = 1, mode: str = 'predict',
                          part: str = 'detector') -> Dict[str, object]:
    """Build a config's detector on CPU and count its graph breaks.

    Args:
        cfg (Config): A detector config.
        img_hw (Tuple[int, int]): Synthetic image size. Defaults to
            (320, 320).
        batch_size (int): Images in the batch. Defaults to 1.
        mode (str): ``'predict'`` or ``'loss'``. Defaults to 'predict'.
        part (str): ``'detector'``, ``'backbone'`` or ``'neck'``.
            Defaults to 'detector'.

    Returns:
        Dict[str, object]: As :func:`count_graph_breaks`.
    """
    from .benchmark import build_detector, synthetic_batch
    model, _ = build_detector(cfg, 'cpu')
    roi_head = cfg.model.get('roi_head') or {}
    num_classes = roi_head.get('bbox_head', {}).get('num_classes', 1)
    batch = synthetic_batch(batch_size, tuple(img_hw), 3, num_classes,
                            'mask_head' in roi_head)
    return count_graph_breaks(model, batch, mode, part)
