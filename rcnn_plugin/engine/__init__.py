from .checkpoint import (
                         TRUST_ENV,
                         UnsafeCheckpointError,
                         load_checkpoint_safely,
                         register_safe_local_loader,
                         safe_globals,
                         trust_checkpoint,
)
from .optimizers import BF16AmpOptimWrapper
from .wrappers import DeviceAwareDistributedDataParallel

__all__ = [
    'TRUST_ENV', 'UnsafeCheckpointError', 'load_checkpoint_safely',
    'register_safe_local_loader', 'safe_globals', 'trust_checkpoint',
    'DeviceAwareDistributedDataParallel', 'BF16AmpOptimWrapper'
]
