from .amp import BF16_SWAPS, enable_amp
from .checkpoint import (
    TRUST_ENV,
    UnsafeCheckpointError,
    load_checkpoint_safely,
    register_safe_local_loader,
    safe_globals,
    trust_checkpoint,
)
from .cli import (
    add_common_args,
    converted_path,
    earlier_output,
    load_config,
    merge_cfg_options,
    seed_message,
)
from .dist import close_distributed, prepare_distributed
from .offline import (
    prepare_offline,
    register_offline_remote_schemes,
    strip_remote_pretrained,
)
from .overlay import apply_overlays

__all__ = [
    'add_common_args',
    'converted_path',
    'earlier_output',
    'load_config',
    'merge_cfg_options',
    'seed_message',
    'close_distributed',
    'prepare_distributed',
    'prepare_offline',
    'register_offline_remote_schemes',
    'strip_remote_pretrained',
    'apply_overlays',
    'BF16_SWAPS',
    'enable_amp',
    'load_checkpoint_safely',
    'register_safe_local_loader',
    'safe_globals',
    'trust_checkpoint',
    'TRUST_ENV',
    'UnsafeCheckpointError',
]
