"""rcnn_plugin: fine-tune Fast, Faster and Mask R-CNN on domain data.

Importing the package (``custom_imports=dict(imports=['rcnn_plugin'])``)
registers its modules in mmdet's registries, makes mmengine load local
checkpoints with ``weights_only=True`` and an allowlist, adds the
``offline-torchvision://`` weights scheme and makes remote checkpoint URLs
load from the local cache only (an explicit error instead of a download).
"""
# First: installs the finder that serves mmcv._ext where mmcv has no
# compiled ops, before anything below imports mmcv.ops, and says how to
# install mmcv when there is none.
from . import ops  # noqa: F401
from .datasets import *  # noqa: F401,F403
from .engine import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .models import register_offline_scheme
from .utils import (
    register_offline_remote_schemes,
    register_safe_local_loader,
)
from .version import __version__

register_safe_local_loader()
register_offline_scheme()
register_offline_remote_schemes()

__all__ = ['__version__']
