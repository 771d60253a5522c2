"""Run a head's box decoding and NMS in float32 under mixed precision."""
from typing import Any

import torch
from torch import Tensor

__all__ = ['FP32PostProcessMixin', 'to_float32']


def to_float32(obj: Any) -> Any:
    """Cast low-precision floating tensors in nested lists/tuples to fp32.

    Args:
        obj (Any): A tensor, or a list or tuple of them (other values pass
            through unchanged).

    Returns:
        Any: The same structure with bfloat16/float16 tensors in float32.
    """
    if isinstance(obj, Tensor):
        if obj.dtype in (torch.bfloat16, torch.float16):
            return obj.float()
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_float32(x) for x in obj)
    return obj


class FP32PostProcessMixin:
    """``predict_by_feat`` in float32, with autocast off, for any head.

    Under bfloat16 autocast, head outputs are bfloat16, with 8 bits of
    mantissa: a box coordinate near 640 px is then rounded to a multiple
    of 4 px, and mmcv's CPU NMS refuses bfloat16 scores. Post-processing
    is cheap, so this mixin runs it on float32 copies outside autocast;
    in float32 it changes nothing.
    """

    def predict_by_feat(self, *args, **kwargs) -> Any:
        """The parent's ``predict_by_feat`` on float32 inputs.

        Args:
            *args: Positional arguments of the parent method.
            **kwargs: Keyword arguments of the parent method.

        Returns:
            Any: The parent's result.
        """
        args = to_float32(args)
        kwargs = {k: to_float32(v) for k, v in kwargs.items()}
        device_types = {
            t.device.type
            for t in _tensors(args) + _tensors(tuple(kwargs.values()))
        } or {'cpu'}
        with _no_autocast(device_types):
            return super().predict_by_feat(*args, **kwargs)


def _tensors(obj: Any) -> list:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for x in obj for t in _tensors(x)]
    return []


class _no_autocast:

    def __init__(self, device_types: set) -> None:
        self.contexts = [
            torch.autocast(d, enabled=False) for d in sorted(device_types)
        ]

    def __enter__(self) -> None:
        for ctx in self.contexts:
            ctx.__enter__()

    def __exit__(self, *exc) -> None:
        for ctx in reversed(self.contexts):
            ctx.__exit__(*exc)
