"""Mixed precision for ``tools/train.py --amp``: fp16 on CUDA, bf16 on CPU."""
from mmengine.config import Config

from .config_types import type_name

__all__ = ['BF16_SWAPS', 'enable_amp']

# Stock type -> plugin type with identical float32 results that also runs
# under bfloat16 autocast on CPU (mmcv's CPU RoIAlign and NMS have no
# bfloat16 kernels).
BF16_SWAPS = {
    'rpn_head': {'RPNHead': 'FP32PostRPNHead'},
    'roi_head.bbox_head': {
        'Shared2FCBBoxHead': 'FP32PostShared2FCBBoxHead'
    },
    'roi_head.bbox_roi_extractor': {
        'SingleRoIExtractor': 'TorchvisionRoIExtractor'
    },
    'roi_head.mask_roi_extractor': {
        'SingleRoIExtractor': 'TorchvisionRoIExtractor'
    },
}
_PLUGIN_TYPES = {t for swaps in BF16_SWAPS.values() for t in swaps.values()}


def _get(cfg: Config, path: str):
    node = cfg
    for key in path.split('.'):
        node = node.get(key) if node is not None else None
    return node


def enable_amp(cfg: Config, cuda: bool) -> str:
    """Switch ``cfg`` to mixed-precision training for this machine.

    With CUDA: mmengine's ``AmpOptimWrapper`` (float16, dynamic loss
    scale), as mmdet's ``--amp``. Without: :class:`BF16AmpOptimWrapper`
    (bfloat16 autocast on CPU, no loss scale), and the stock RPN head, box
    head and RoI extractors (box and mask) become their plugin twins,
    which give identical float32 results and run in bfloat16 on CPU.

    Args:
        cfg (Config): A two-stage detector config; changed in place.
        cuda (bool): Whether training runs on CUDA.

    Returns:
        str: What was changed, for the log.
    """
    if cuda:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        return 'AMP: float16 autocast with dynamic loss scaling (CUDA)'
    cfg.optim_wrapper.type = 'BF16AmpOptimWrapper'
    for key in ('loss_scale', 'dtype'):
        cfg.optim_wrapper.pop(key, None)
    changed = []
    for path, swaps in BF16_SWAPS.items():
        node = _get(cfg.model, path)
        if node is None:
            continue
        if isinstance(node, (list, tuple)):  # a cascade's stages
            raise ValueError(
                f'--amp on CPU: model.{path} is a list of {len(node)} '
                'stages (a cascade), which has no bfloat16-safe twin; '
                'drop --amp')
        name = type_name(node.type)
        if name in swaps:
            changed.append(f'{path}: {name} -> {swaps[name]}')
            # Scoped, so that a config without mmdet's default scope (or
            # one naming classes) still finds the plugin's twin.
            node.type = (swaps[name] if node.type == name
                         else f'mmdet.{swaps[name]}')
        elif name not in _PLUGIN_TYPES:
            raise ValueError(
                f'--amp on CPU: model.{path} type {node.type!r} has no '
                'bfloat16-safe twin; supported: '
                f'{sorted(swaps)} (or drop --amp)')
    return ('AMP: bfloat16 autocast on CPU (no CUDA device), '
            'BF16AmpOptimWrapper; ' + '; '.join(changed or ['no swaps']))
