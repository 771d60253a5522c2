"""A DDP wrapper that runs on CPU (gloo) and GPU alike.

Two problems of mmengine's ``MMDistributedDataParallel`` with mmdet models:

- The Runner passes ``device_ids=[LOCAL_RANK]``, which torch refuses for a
  module on CPU. This subclass drops ``device_ids`` for CPU modules.
- DDP records which parameters require grad when it is built. mmdet's
  ``MobileNetV2`` applies ``frozen_stages`` only in ``train()``, which the
  Runner calls later, so DDP waits for gradients that never come and the
  second iteration fails ("Expected to have finished reduction"). This
  subclass calls ``train()`` once before wrapping, keeping the mode, so
  that freezing is applied first.
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
        module.train(module.training)  # apply frozen_stages before DDP
        param = next(module.parameters(), None)
        if param is not None and param.device.type == 'cpu':
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
