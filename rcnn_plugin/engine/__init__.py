from .checkpoint import (
                         TRUST_ENV,
                         UnsafeCheckpointError,
                         load_checkpoint_safely,
                         register_safe_local_loader,
                         safe_globals,
                         trust_checkpoint,
)
from .checkpoint_io import (
    CorruptCheckpointError,
    compare_state_dicts,
    group_by_module,
    read_checkpoint,
)
from .wrappers import DeviceAwareDistributedDataParallel

__all__ = [
    'TRUST_ENV', 'UnsafeCheckpointError', 'load_checkpoint_safely',
    'register_safe_local_loader', 'safe_globals', 'trust_checkpoint',
    'DeviceAwareDistributedDataParallel', 'CorruptCheckpointError',
    'read_checkpoint', 'compare_state_dicts', 'group_by_module'
]
