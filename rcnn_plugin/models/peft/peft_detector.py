"""``PEFTDetector``: build any mmdet detector with LoRA and freezing.

Registered in mmdet's ``MODELS`` as a function, so a config turns PEFT on
by changing the type of its (inherited) ``model`` dict and adding two
keys; everything else of the base model dict merges as usual::

    _base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
    model = dict(
        type='PEFTDetector',
        detector_type='FasterRCNN',     # the base config's model type
        lora=dict(rank=8, alpha=16, dropout=0.0,
                  target_modules=r'backbone\\..*|roi_head.bbox_head.shared_fcs.*'),
        freeze=dict(frozen='.*', trainable=['neck', 'rpn_head']))

The function builds the detector, injects LoRA, applies the freezing policy
and returns the detector itself: state-dict keys, ``data_preprocessor`` and
the ``loss`` / ``predict`` contract are the detector's. It runs when the
Runner builds the model, before weights are initialised or loaded, before
the optimizer and before the DDP wrapper, so the optimizer and DDP only
see the parameters that are meant to train.
"""
import copy
from typing import Optional

from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from torch import nn

from .conv_adapter import inject_conv_adapters, is_adapter_param
from .freeze import apply_freeze
from .hf_peft import finish_hf, inject_backend
from .inject import inject_lora
from .prompts import inject_prompts

LORA_KEYS = ('target_modules', 'rank', 'alpha', 'dropout')
FREEZE_KEYS = ('frozen', 'trainable', 'norm_eval', 'bias_norm')
ADAPTER_KEYS = ('target_modules', 'bottleneck', 'kernel_size', 'act',
                'placement')
PROMPT_KEYS = ('input', 'features')


def _plain(cfg: Optional[dict]) -> Optional[dict]:
    if cfg is None:
        return None
    if isinstance(cfg, ConfigDict):
        cfg = cfg.to_dict()
    if not isinstance(cfg, dict):
        raise TypeError(f'expected a dict, got {type(cfg).__name__}')
    return copy.deepcopy(dict(cfg))


def _check_keys(cfg: dict, allowed: tuple, what: str) -> None:
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise TypeError(f'{what} got unknown keys {unknown}; allowed: '
                        f'{list(allowed)}')


def _check_adapters_stay_trainable(model: nn.Module) -> None:
    """Refuse LoRA layers that the model's own ``train()`` freezes.

    mmdet backbones freeze their first ``frozen_stages`` in ``train()``,
    the LoRA layers inside included; such adapters would silently never
    train. Conv adapters and feature prompts live on the model's root
    (``conv_adapters`` / ``feature_prompts``), which ``frozen_stages``
    does not reach.
    """
    model.train()
    dead = [n for n, p in model.named_parameters()
            if is_adapter_param(n) and not p.requires_grad]
    if dead:
        raise ValueError(
            f'{len(dead)} LoRA / adapter / prompt parameters are frozen by '
            f'the model itself in train(), e.g. {dead[0]} (a backbone\'s '
            'frozen_stages?). Exclude those layers from target_modules.')


@MODELS.register_module(name='PEFTDetector')
def build_peft_detector(detector_type: str,
                        lora: Optional[dict] = None,
                        freeze: Optional[dict] = None,
                        backend: str = 'native',
                        peft_cfg: Optional[dict] = None,
                        conv_adapter: Optional[dict] = None,
                        prompt: Optional[dict] = None,
                        **detector_cfg) -> nn.Module:
    """Build a detector, add LoRA layers and apply a freezing policy.

    Args:
        detector_type (str): The registered detector type, e.g.
            ``'FasterRCNN'`` (the ``type`` that ``PEFTDetector`` replaces).
        lora (dict, optional): ``target_modules`` (regex over module names,
            required), ``rank`` (default 8), ``alpha`` (default 16),
            ``dropout`` (default 0.0). None: no LoRA. Defaults to None.
        freeze (dict, optional): ``frozen`` and ``trainable`` (patterns, see
            :func:`~rcnn_plugin.models.peft.apply_freeze`) and
            ``norm_eval`` (default True) and ``bias_norm``. With LoRA or
            ``bias_norm``, ``frozen`` defaults to ``'.*'``: only the
            adapters (biases and norms) and ``trainable`` modules train.
            Defaults to None.
        backend (str): ``'native'`` (our LoRA) or ``'peft'`` (the optional
            HF ``peft`` package, ``pip install -e '.[peft]'``).
            Defaults to 'native'.
        peft_cfg (dict, optional): With ``backend='peft'``: ``type``
            (``'LoRA'``, ``'DoRA'``, ``'LoHa'``, ``'LoKr'``, ``'IA3'``),
            ``target_modules`` (our regex) and the ``peft`` config's own
            arguments (``r``, ``lora_alpha``, ``alpha`` ...), see
            :func:`~rcnn_plugin.models.peft.hf_peft.inject_hf_peft`. With
            it, ``frozen`` defaults to ``'.*'``. Defaults to None.
        conv_adapter (dict, optional): ``target_modules`` (required),
            ``bottleneck`` (16), ``kernel_size`` (3), ``act`` ('ReLU' or
            None), ``placement`` ('parallel' / 'sequential'), see
            :func:`~rcnn_plugin.models.peft.inject_conv_adapters`. With it,
            ``frozen`` defaults to ``'.*'``. Defaults to None.
        prompt (dict, optional): ``input`` (:class:`InputPrompt` args)
            and / or ``features`` (``target_modules``, ``kind``), see
            :func:`~rcnn_plugin.models.peft.inject_prompts`. With it,
            ``frozen`` defaults to ``'.*'``. Defaults to None.
        **detector_cfg: The rest of the detector's config (``backbone``,
            ``neck``, ``train_cfg`` ...).

    Returns:
        nn.Module: The detector itself, with LoRA layers in place and its
        ``peft_cfg`` attribute holding the PEFT settings.
    """
    if not isinstance(detector_type, str) or detector_type == 'PEFTDetector':
        raise ValueError('PEFTDetector needs detector_type, the registered '
                         'type of the wrapped detector (e.g. "FasterRCNN"), '
                         f'got {detector_type!r}')
    lora, freeze = _plain(lora), _plain(freeze) or {}
    _check_keys(freeze, FREEZE_KEYS, 'PEFTDetector freeze')
    model = MODELS.build(dict(type=detector_type, **detector_cfg))
    if lora is not None:
        _check_keys(lora, LORA_KEYS, 'PEFTDetector lora')
        if 'target_modules' not in lora:
            raise ValueError('PEFTDetector lora needs target_modules, a regex'
                             ' over module names')
        inject_lora(model, **lora)
        freeze.setdefault('frozen', '.*')
    conv_adapter, prompt = _plain(conv_adapter), _plain(prompt)
    if conv_adapter is not None:
        _check_keys(conv_adapter, ADAPTER_KEYS, 'PEFTDetector conv_adapter')
        if 'target_modules' not in conv_adapter:
            raise ValueError('PEFTDetector conv_adapter needs '
                             'target_modules, a regex over module names')
        inject_conv_adapters(model, **conv_adapter)
        freeze.setdefault('frozen', '.*')
    if prompt is not None:
        _check_keys(prompt, PROMPT_KEYS, 'PEFTDetector prompt')
        inject_prompts(model, **prompt)
        freeze.setdefault('frozen', '.*')
    if freeze.get('bias_norm'):  # BitFit: else the whole model trained
        freeze.setdefault('frozen', '.*')
    peft_cfg = _plain(peft_cfg)
    inject_backend(model, backend, peft_cfg, lora, freeze)
    apply_freeze(model, **freeze)
    finish_hf(model)
    _check_adapters_stay_trainable(model)
    model.peft_cfg = dict(detector_type=detector_type, lora=lora,
                          freeze=freeze)
    if backend != 'native':  # absent keys keep old adapters' meta equal
        model.peft_cfg.update(backend=backend, peft_cfg=peft_cfg)
    for key, value in (('conv_adapter', conv_adapter), ('prompt', prompt)):
        if value is not None:  # absent keys keep old adapters' meta equal
            model.peft_cfg[key] = value
    return model
