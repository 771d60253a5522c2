"""bfloat16 mixed precision that works on CPU as well as CUDA."""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn

__all__ = ['BF16AmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class BF16AmpOptimWrapper(OptimWrapper):
    """Run the forward pass under ``torch.autocast(dtype=torch.bfloat16)``.

    mmengine's ``AmpOptimWrapper`` refuses to start without an accelerator
    and always carries a CUDA ``GradScaler``. bfloat16 has float32's
    exponent range, so gradients do not underflow and need no loss
    scaling: what remains is the autocast context, on the device the model
    lives on (CPU or CUDA). Weights, gradients and the optimizer state stay
    float32, as with ``AmpOptimWrapper``.

    Use it with one key::

        optim_wrapper = dict(type='BF16AmpOptimWrapper')

    Args:
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper`.
    """

    cast_dtype = torch.bfloat16

    def __init__(self, **kwargs) -> None:
        for key in ('loss_scale', 'dtype'):
            if key in kwargs:
                raise ValueError(f'BF16AmpOptimWrapper takes no {key!r}: '
                                 'bfloat16 needs no loss scaling; use '
                                 'AmpOptimWrapper for float16')
        super().__init__(**kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context plus bfloat16 autocast.

        Args:
            model (nn.Module): The model being trained.
        """
        param = next(model.parameters(), None)
        device_type = param.device.type if param is not None else 'cpu'
        with super().optim_context(model), torch.autocast(
                device_type, dtype=torch.bfloat16):
            yield
