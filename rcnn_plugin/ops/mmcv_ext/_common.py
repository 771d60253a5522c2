"""Helpers shared by the served kernels (torch and stdlib only)."""
import struct

import torch

__all__ = ['compute_dtype', 'f32', 'INSTALL_HINT']

INSTALL_HINT = ('Get mmcv with its compiled ops with '
                '`RCNN_MMCV=full bash tools/setup_env.sh` or '
                '`pip install rcnn_plugin[full]`.')


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype a served kernel computes in for ``tensor``.

    float32 and float64 are kept. Other dtypes (float16, bfloat16) are
    computed in float32 and the result is cast back: torchvision has no
    bfloat16 kernels, and float32 is at least as accurate as mmcv's
    float16 kernels.

    Args:
        tensor (torch.Tensor): The tensor whose dtype decides.

    Returns:
        torch.dtype: float32 or float64.
    """
    if tensor.dtype in (torch.float32, torch.float64):
        return tensor.dtype
    return torch.float32


def f32(value: float) -> float:
    """Round ``value`` to the nearest float32, as mmcv's bindings do.

    mmcv's C++ kernels take ``float`` scalars (thresholds, scales), so a
    Python float is rounded to float32 before any comparison.

    Args:
        value (float): A Python float.

    Returns:
        float: ``value`` rounded to float32, as a Python float.
    """
    return struct.unpack('f', struct.pack('f', float(value)))[0]
