"""``torch.compile`` of a detector's backbone and neck, in place."""
from typing import List

from mmengine.model import is_model_wrapper
from torch import nn

PARTS = ('backbone', 'neck')


def compile_backbone_neck(model: nn.Module, **compile_kwargs) -> List[str]:
    """Compile ``model.backbone`` and ``model.neck`` in place.

    Args:
        model (nn.Module): A detector, or a model wrapper around one.
        **compile_kwargs: Arguments of ``torch.compile`` (``backend``,
            ``mode``, ``dynamic``, ``fullgraph``, ``options``).

    Returns:
        List[str]: The names of the compiled submodules.

    Raises:
        ValueError: When the model has neither a backbone nor a neck.
    """
    module = model.module if is_model_wrapper(model) else model
    compiled = []
    for name in PARTS:
        part = getattr(module, name, None)
        if isinstance(part, nn.Module):
            part.compile(**compile_kwargs)
            compiled.append(name)
    if not compiled:
        raise ValueError(
            f'{type(module).__name__} has no backbone or neck to compile; '
            'CompileBackboneNeckHook is for mmdet detectors')
    return compiled


def is_compiled(module: nn.Module) -> bool:
    """Whether ``nn.Module.compile`` was called on ``module``.

    Args:
        module (nn.Module): Any module.

    Returns:
        bool: True when its calls go through the compiled forward.
    """
    return getattr(module, '_compiled_call_impl', None) is not None
