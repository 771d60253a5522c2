"""A DDP wrapper that also runs on CPU (gloo).

mmengine's Runner passes ``device_ids=[LOCAL_RANK]`` to its DDP wrapper,
which torch refuses for a module on CPU. This subclass drops ``device_ids``
when the module's parameters live on the CPU, so the same config and
launcher (``torchrun``) work on CPU machines and on GPUs.
"""
from typing import List, Optional

import torch.nn as nn
from mmdet.registry import MODEL_WRAPPERS
from mmengine.model import MMDistributedDataParallel


@MODEL_WRAPPERS.register_module()
class DeviceAwareDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that accepts CPU modules.

    Args:
        module (nn.Module): The model to wrap.
        device_ids (list[int], optional): Passed on for CUDA modules and
            dropped for CPU modules. Defaults to None.
        **kwargs: Other arguments of ``MMDistributedDataParallel``.
    """

    def __init__(self,
                 module: nn.Module,
                 device_ids: Optional[List[int]] = None,
                 **kwargs) -> None:
        param = next(module.parameters(), None)
        if param is not None and param.device.type == 'cpu':
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
