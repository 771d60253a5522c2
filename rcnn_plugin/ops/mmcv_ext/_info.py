"""``get_compiler_version`` / ``get_compiling_cuda_version`` of the stand-in.

mmcv.ops.info and mmcv's ``collect_env`` (thus mmdet's) print these.
"""
import torch
import torchvision

__all__ = ['get_compiler_version', 'get_compiling_cuda_version']


def get_compiler_version() -> str:
    """What serves the ops, in place of the compiler of mmcv's build.

    Returns:
        str: For example ``'torchvision 0.29.1 (rcnn_plugin stand-in for
        mmcv._ext)'``.
    """
    return (f'torchvision {torchvision.__version__} '
            '(rcnn_plugin stand-in for mmcv._ext)')


def get_compiling_cuda_version() -> str:
    """The CUDA version torchvision's kernels were built with.

    Returns:
        str: For example ``'12.8'`` (torch's spelling: torchvision may
        say ``'12080'``), or ``'not available'`` for a CPU-only
        torchvision, as mmcv reports a build without CUDA ops.
    """
    if not torchvision.version.cuda:
        return 'not available'
    return torch.version.cuda or str(torchvision.version.cuda)
