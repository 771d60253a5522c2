"""Normalisation: ``data_preprocessor`` against the pretrained backbone.

Fine-tuning feeds the backbone images normalised the way its ImageNet
weights were trained. Two conventions cover the weights mmdet configs use:

- PyTorch style (torchvision, our ``offline-torchvision://``, mmpretrain /
  mmcls, MSRA HRNet, ``open-mmlab://mmdet/mobilenet_v2``): RGB, mean
  ``[123.675, 116.28, 103.53]``, std ``[58.395, 57.12, 57.375]``.
- Caffe style (``open-mmlab://detectron*/*_caffe``, ``*_caffe``): BGR,
  mean ``[103.53, 116.28, 123.675]``, std ``[1, 1, 1]``.

mmdet's RegNet weights (``open-mmlab://regnetx_*``) are BGR with
std ``[57.375, 57.12, 58.395]``. Weights not listed are not judged.
"""
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from .context import DoctorContext, detector_cfg
from .finding import Finding
from .offline import iter_weight_refs

__all__ = ['CONVENTIONS', 'check_normalisation', 'known_convention']

_RGB_MEAN = [123.675, 116.28, 103.53]
_RGB_STD = [58.395, 57.12, 57.375]
# name -> (bgr_to_rgb, mean, std), mean and std in the channel order the
# network receives.
CONVENTIONS = {
    'pytorch': (True, _RGB_MEAN, _RGB_STD),
    'caffe': (False, _RGB_MEAN[::-1], [1.0, 1.0, 1.0]),
    'regnet': (False, _RGB_MEAN[::-1], _RGB_STD[::-1]),
}
# (substring of the checkpoint reference, convention); first match wins.
_RULES = [
    ('caffe', 'caffe'),
    ('open-mmlab://regnetx', 'regnet'),
    ('offline-torchvision://', 'pytorch'),
    ('torchvision://', 'pytorch'),
    ('open-mmlab://msra/', 'pytorch'),
    ('open-mmlab://mmdet/mobilenet_v2', 'pytorch'),
    ('open-mmlab://resnext', 'pytorch'),
    ('open-mmlab://res2net', 'pytorch'),
    ('mmcls://', 'pytorch'),
    ('download.openmmlab.com/mmclassification/', 'pytorch'),
    ('download.openmmlab.com/mmpretrain/', 'pytorch'),
    ('download.pytorch.org/models/', 'pytorch'),
]


def known_convention(ref: str) -> Optional[str]:
    """The normalisation convention of a pretrained checkpoint, if known.

    Args:
        ref (str): A checkpoint reference, e.g.
            ``'open-mmlab://detectron2/resnet50_caffe'``.

    Returns:
        str | None: A key of :data:`CONVENTIONS`, or None.
    """
    for pattern, name in _RULES:
        if pattern in ref:
            return name
    return None


def _backbone_refs(model_cfg: dict) -> Iterator[Tuple[str, str]]:
    """Checkpoint references that initialise the backbone (of the wrapped
    ``detector`` in mmdet's semi-supervised models)."""
    key, detector = detector_cfg(model_cfg)
    yield from iter_weight_refs(detector.get('backbone'), f'{key}.backbone')


def _preprocessor(model_cfg: dict) -> Tuple[str, dict]:
    """The ``data_preprocessor`` that normalises, and its config key.

    ``MultiBranchDataPreprocessor`` (mmdet's semi-supervised and our
    domain-adaptation configs) normalises with the one it wraps.
    """
    key, pre = 'model.data_preprocessor', model_cfg.get(
        'data_preprocessor') or {}
    while isinstance(pre.get('data_preprocessor'), dict):
        key, pre = f'{key}.data_preprocessor', pre['data_preprocessor']
    return key, pre


def _close(a: Sequence[float], b: Sequence[float], tol: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def _scale_error(values: Sequence[float], want: Sequence[float]) -> bool:
    """True if values are an order of magnitude off (e.g. 0-1 scaled)."""
    return any(v > 0 and (w / v > 10 or v / w > 10)
               for v, w in zip(values, want))


def _compare(key: str, ref: str, name: str, pre_key: str,
             pre: Any) -> List[Finding]:
    to_rgb, mean, std = CONVENTIONS[name]
    findings = []
    # Images load as BGR; either flag flips the channels.
    have_rgb = bool(pre.get('bgr_to_rgb') or pre.get('rgb_to_bgr'))
    if have_rgb != to_rgb:
        findings.append(Finding(
            'normalisation', 'warning',
            f'{key} = {ref!r} expects {"RGB" if to_rgb else "BGR"} input '
            f'({name} style) but {pre_key}.bgr_to_rgb is '
            f'{have_rgb}: the pretrained filters see swapped colours',
            f'set {pre_key}.bgr_to_rgb={to_rgb}', f'{pre_key}.bgr_to_rgb'))
    for field, want in (('mean', mean), ('std', std)):
        have = pre.get(field)
        if have is None or _close(have, want, 0.5):
            continue
        scaled = _scale_error(have, want)
        findings.append(Finding(
            'normalisation', 'error' if scaled else 'warning',
            f'{pre_key}.{field} is {list(have)} but {key} = '
            f'{ref!r} was trained with {want} ({name} style)' +
            (' on 0-255 pixels: inputs are off by orders of magnitude'
             if scaled else ''),
            f'set {pre_key}.{field}={want}', f'{pre_key}.{field}'))
    return findings


def check_normalisation(ctx: DoctorContext) -> List[Finding]:
    """Compare ``data_preprocessor`` mean / std / ``bgr_to_rgb`` with the
    convention of the backbone's pretrained weights, where known.

    Args:
        ctx (DoctorContext): The config.

    Returns:
        list[Finding]: Warnings for a mismatch; an error when mean or std
        is off by more than 10x (e.g. 0-1 values on 0-255 pixels).
    """
    pre_key, pre = _preprocessor(ctx.cfg.model)
    findings = []
    for key, ref in _backbone_refs(ctx.cfg.model):
        name = known_convention(ref)
        if name is not None:
            findings += _compare(key, ref, name, pre_key, pre)
    return findings
