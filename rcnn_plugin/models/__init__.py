from .peft import *  # noqa: F401,F403
from .peft import __all__ as _peft_all
from .utils import (
                    OFFLINE_MODELS,
                    convert_mobilenet_v2,
                    find_offline_weights,
                    register_offline_scheme,
)

__all__ = [
    'OFFLINE_MODELS', 'convert_mobilenet_v2', 'find_offline_weights',
    'register_offline_scheme'
] + _peft_all
