"""Turn a PEFT model and config into a plain mmdet model and config."""
import copy
from collections import OrderedDict
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from torch import nn

from rcnn_plugin.utils.checkpoint_io import read_checkpoint_file
from rcnn_plugin.utils.config_types import cfg_type_name

from .adapter import load_adapter
from .conv_adapter import is_adapter_param, merge_conv_adapters
from .freeze import unfreeze_norm_stats
from .hf_peft import hf_adapter_keys, merge_hf_peft, remap_base_keys
from .inject import merge_lora
from .prompts import merge_prompts

PEFT_TYPE = 'PEFTDetector'
PEFT_HOOKS = ('AdapterCheckpointHook', )


def plain_config(cfg: Config) -> Config:
    """The config without PEFT: the detector's own type, no LoRA or hooks.

    Args:
        cfg (Config): A config whose model type is ``PEFTDetector``.

    Returns:
        Config: A copy whose ``model`` is the wrapped detector's dict and
        whose ``custom_hooks`` lack :class:`AdapterCheckpointHook`.

    Raises:
        ValueError: If the model type is not ``PEFTDetector``.
    """
    # Registered by name on a function: a pure-Python config names it
    # build_peft_detector.
    if cfg_type_name(cfg.model) not in (PEFT_TYPE, 'build_peft_detector'):
        raise ValueError(f'model.type is {cfg.model.get("type")!r}, not '
                         f'{PEFT_TYPE!r}: nothing to merge')
    out = copy.deepcopy(cfg)
    model = out.model
    model.type = model.pop('detector_type')
    for key in ('lora', 'freeze', 'conv_adapter', 'prompt', 'backend',
                'peft_cfg'):
        model.pop(key, None)
    hooks = [h for h in out.get('custom_hooks', [])
             if cfg_type_name(h) not in PEFT_HOOKS]
    if 'custom_hooks' in out:
        out.custom_hooks = hooks
    return out


def _state_dict(ckpt: dict) -> dict:
    state = ckpt.get('state_dict', ckpt)
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k,
                        v) for k, v in state.items())


def load_peft_model(cfg: Config,
                    checkpoint: str,
                    adapter: Optional[str] = None) -> nn.Module:
    """Build the PEFT model of ``cfg`` and load its weights.

    Args:
        cfg (Config): A ``PEFTDetector`` config.
        checkpoint (str): A full checkpoint of the PEFT model (e.g.
            ``epoch_8.pth``) or, with ``adapter``, the base checkpoint.
        adapter (str, optional): An adapter checkpoint to load on top of
            ``checkpoint``. Defaults to None.

    Returns:
        nn.Module: The model, in eval mode.

    Raises:
        ValueError: If ``checkpoint`` lacks model keys other than adapter
            keys that ``adapter`` provides.
    """
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None  # weights come from checkpoint
    model = MODELS.build(model_cfg)
    state = _state_dict(read_checkpoint_file(checkpoint))
    state = remap_base_keys(state, model)  # a plain base, peft layers
    result = model.load_state_dict(state, strict=False)
    hf_keys = set(hf_adapter_keys(model))
    lora_keys = [k for k in result.missing_keys
                 if is_adapter_param(k) or k in hf_keys]
    other = [k for k in result.missing_keys if k not in lora_keys]
    if other or (lora_keys and adapter is None):
        missing = (other or lora_keys)[0]
        raise ValueError(
            f'{checkpoint} lacks {len(other) + len(lora_keys)} keys of the '
            f'model, e.g. {missing!r}' +
            ('' if other else '; pass the adapter trained on it'))
    if result.unexpected_keys:
        raise ValueError(f'{checkpoint} has keys the model lacks, e.g. '
                         f'{result.unexpected_keys[0]!r}')
    if adapter is not None:
        load_adapter(model, adapter)
    return model.eval()


def merge_to_plain(model: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """Fold LoRA, conv adapters and prompts in; return a plain state dict.

    LoRA always folds; conv adapters and feature prompts only where exact
    (see :func:`merge_conv_adapters`, :func:`merge_prompts`).

    Args:
        model (nn.Module): A PEFT model, changed in place into a plain one.

    Returns:
        OrderedDict[str, Tensor]: Its state dict, with the keys of the model
        built without PEFT.

    Raises:
        ValueError: If a conv adapter or prompt cannot fold (nonlinear,
            input prompts, ...); the message lists each and why. LoRA is
            merged by then.
    """
    merge_lora(model)
    # a conv adapter hooks the base layer that peft wrapped later, so it
    # folds into the base weight first: (I + M) W + dW, as it trained
    merge_conv_adapters(model)
    merge_hf_peft(model)
    merge_prompts(model)
    unfreeze_norm_stats(model)
    return OrderedDict((k, v.detach().clone())
                       for k, v in model.state_dict().items())
