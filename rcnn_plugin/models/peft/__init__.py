from .adapter import (
                      adapter_state_dict,
                      architecture,
                      base_fingerprint,
                      load_adapter,
                      save_adapter,
)
from .conv_adapter import (
                           ConvAdapter,
                           inject_conv_adapters,
                           is_adapter_param,
                           merge_conv_adapters,
)
from .export import load_peft_model, merge_to_plain, plain_config
from .freeze import (
                     apply_freeze,
                     freeze_norm_stats,
                     parameter_table,
                     refreeze_norm_stats,
                     select_modules,
                     set_bias_norm_trainable,
                     set_requires_grad,
                     unfreeze_norm_stats,
)
from .inject import (
                     find_lora_targets,
                     inject_lora,
                     lora_layers,
                     merge_lora,
                     no_match_error,
)
from .lora_layers import LoRAConv2d, LoRALinear
from .peft_detector import build_peft_detector
from .prompts import FeaturePrompt, InputPrompt, inject_prompts, merge_prompts

__all__ = [
    'ConvAdapter', 'inject_conv_adapters', 'is_adapter_param',
    'merge_conv_adapters', 'FeaturePrompt', 'InputPrompt', 'inject_prompts',
    'merge_prompts', 'set_bias_norm_trainable',
    'adapter_state_dict', 'architecture', 'base_fingerprint', 'load_adapter',
    'save_adapter', 'apply_freeze', 'freeze_norm_stats', 'parameter_table',
    'select_modules', 'set_requires_grad', 'unfreeze_norm_stats',
    'refreeze_norm_stats',
    'find_lora_targets', 'inject_lora', 'lora_layers', 'merge_lora',
    'no_match_error', 'LoRAConv2d', 'LoRALinear', 'build_peft_detector',
    'load_peft_model', 'merge_to_plain', 'plain_config'
]
