"""A pure-Python stand-in for mmcv's compiled ``mmcv._ext``.

Loaded as ``mmcv._ext`` by :mod:`rcnn_plugin.ops.ext_finder` only when
mmcv has no compiled extension (mmcv-lite); it imports torch, torchvision
and the standard library only. Served, with mmcv 2.1.0's signatures and
in-place outputs, on CPU and CUDA: ``nms``, ``softnms``, ``nms_match``,
``roi_align_forward/backward`` (average pooling), ``roi_pool_forward/
backward``, ``deform_conv_*``, ``modulated_deform_conv_*`` and
``sigmoid_focal_loss_forward/backward``. Every other name mmcv's wrappers
look up exists, so that ``import mmcv.ops`` works, and raises
``NotImplementedError`` when called.
"""
from ._deform_conv import (
    deform_conv_backward_input,
    deform_conv_backward_parameters,
    deform_conv_forward,
    modulated_deform_conv_backward,
    modulated_deform_conv_forward,
)
from ._focal_loss import (
    sigmoid_focal_loss_backward,
    sigmoid_focal_loss_forward,
)
from ._info import get_compiler_version, get_compiling_cuda_version
from ._nms import nms, nms_match, softnms
from ._roi_align import roi_align_backward, roi_align_forward
from ._roi_pool import roi_pool_backward, roi_pool_forward
from ._unserved import UNSERVED, unserved_op

__all__ = [
    'nms', 'softnms', 'nms_match', 'roi_align_forward', 'roi_align_backward',
    'roi_pool_forward', 'roi_pool_backward', 'deform_conv_forward',
    'deform_conv_backward_input', 'deform_conv_backward_parameters',
    'modulated_deform_conv_forward', 'modulated_deform_conv_backward',
    'sigmoid_focal_loss_forward', 'sigmoid_focal_loss_backward',
    'get_compiler_version', 'get_compiling_cuda_version'
]

# Marks this module for ext_finder.is_served().
RCNN_PLUGIN_SERVED = True


def __getattr__(name: str):
    if name in UNSERVED:
        return unserved_op(name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | UNSERVED)
