"""The optional HF ``peft`` backend: LoRA, DoRA, LoHa, LoKr and IA3.

``PEFTDetector(backend='peft', peft_cfg=dict(type='LoHa', r=4,
target_modules=...))`` injects adapters of the ``peft`` package
(``peft.inject_adapter_in_model``) into a built mmdet detector. The layers
are chosen by our own ``target_modules`` regex (:func:`find_lora_targets`:
full-name match, its error listing close names); ``peft`` receives the
resolved list of layer names. mmcv's convolutions are ``nn.Conv2d``
subclasses, so ``peft`` wraps them as it wraps ``nn.Conv2d``.

``peft`` is an optional extra (``pip install -e '.[peft]'``); nothing here
imports it before it is asked for. A ``peft`` layer moves the base layer's
tensors under ``<layer>.base_layer.``; :func:`remap_base_keys` maps a plain
checkpoint onto those keys, and :func:`merge_hf_peft` folds the adapters
back (``peft``'s per-layer ``merge()``) and restores the plain layers.
"""
import re
import sys
import types
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

import torch
from mmengine.logging import MMLogger
from torch import nn

from .freeze import parameter_table
from .inject import _set_submodule, find_lora_targets

BACKENDS = ('native', 'peft')
PEFT_EXTRA = "pip install -e '.[peft]' (or pip install 'peft>=0.11')"
# type -> (peft config class, fixed arguments)
PEFT_METHODS = {
    'LoRA': ('LoraConfig', {}),
    'DoRA': ('LoraConfig', dict(use_dora=True)),
    'LoHa': ('LoHaConfig', {}),
    'LoKr': ('LoKrConfig', {}),
    'IA3': ('IA3Config', {}),
}


def import_peft():
    """Import the ``peft`` package, or say which extra installs it.

    Returns:
        module: The ``peft`` module.

    Raises:
        ImportError: If ``peft`` is not installed; the message names the
            ``peft`` extra of rcnn_plugin.
    """
    try:
        import peft
    except ImportError as err:
        raise ImportError(
            "PEFTDetector backend='peft' needs the optional HF peft "
            f'package (the "peft" extra of rcnn_plugin): {PEFT_EXTRA}. '
            "The default backend='native' (our LoRA) needs nothing "
            'more.') from err
    return peft


def _feedforward(cfg: dict, targets: List[str]) -> List[str]:
    """IA3's ``feedforward_modules`` (our regex) as layer names."""
    pattern = cfg.pop('feedforward_modules', None)
    if pattern is None:
        return []
    regex = re.compile(pattern)
    chosen = [t for t in targets if regex.fullmatch(t)]
    if not chosen:
        raise ValueError(
            f'peft_cfg.feedforward_modules={pattern!r} matches none of the '
            f'{len(targets)} target layers, e.g. {targets[:4]}')
    return chosen


def build_hf_config(peft, peft_cfg: dict, targets: List[str]):
    """The ``peft`` config object for a ``peft_cfg`` dict.

    Args:
        peft (module): The ``peft`` module.
        peft_cfg (dict): ``type`` (one of ``PEFT_METHODS``) and the
            arguments of its ``peft`` config class (``r``, ``lora_alpha``,
            ``alpha``, ...); ``target_modules`` is replaced by ``targets``.
        targets (list[str]): Resolved layer names.

    Returns:
        PeftConfig: E.g. a ``LoHaConfig``.

    Raises:
        ValueError: For an unknown type or a rank ``r`` below 1.
    """
    cfg = dict(peft_cfg)
    method = cfg.pop('type', None)
    if method not in PEFT_METHODS:
        raise ValueError(f'peft_cfg.type must be one of '
                         f'{list(PEFT_METHODS)}, got {method!r}')
    cfg.pop('target_modules', None)
    if 'r' in cfg and (not isinstance(cfg['r'], int) or cfg['r'] < 1):
        raise ValueError(f'peft_cfg.r must be a positive int, got '
                         f'{cfg["r"]!r}')
    if method == 'IA3':
        cfg['feedforward_modules'] = _feedforward(cfg, targets)
    class_name, fixed = PEFT_METHODS[method]
    return getattr(peft, class_name)(target_modules=list(targets),
                                     **fixed, **cfg)


def inject_hf_peft(model: nn.Module, peft_cfg: dict) -> List[str]:
    """Put ``peft`` adapters into the layers ``target_modules`` selects.

    Args:
        model (nn.Module): The built model, changed in place.
        peft_cfg (dict): ``type``, ``target_modules`` (our regex, fully
            matched against module names, see :func:`find_lora_targets`)
            and the ``peft`` config's own arguments.

    Returns:
        list[str]: The names of the adapted layers.

    Raises:
        ImportError: If ``peft`` is not installed (names the extra).
        ValueError: If the regex selects no layer (lists close names).
    """
    if 'target_modules' not in peft_cfg:
        raise ValueError('PEFTDetector peft_cfg needs target_modules, a '
                         'regex over module names')
    if peft_cfg.get('bias', 'none') != 'none' or \
            peft_cfg.get('modules_to_save'):
        raise ValueError(
            "PEFTDetector peft_cfg bias / modules_to_save are not used: "
            "the freeze policy decides what trains besides the adapters. "
            "Set bias='none' and name the modules in freeze.trainable (or "
            'use freeze.bias_norm for the biases of the other layers; those '
            'of the adapted layers stay frozen, as with our LoRA)')
    peft = import_peft()
    targets = find_lora_targets(model, peft_cfg['target_modules'],
                                what='peft_cfg.target_modules')
    config = build_hf_config(peft, peft_cfg, targets)
    # peft's injection freezes every parameter that is not an adapter's;
    # put the others back as they were, so only the freeze policy decides
    # (as with the native backend). The wrapped base layers are renamed
    # (``base_layer``) and stay frozen.
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    peft.inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        if name in before:
            param.requires_grad_(before[name])
    return targets


def hf_tuner_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """The model's ``peft`` layers by name (empty if ``peft`` is unused).

    Args:
        model (nn.Module): Any model.

    Returns:
        dict[str, nn.Module]: ``peft`` ``BaseTunerLayer`` instances.
    """
    if sys.modules.get('peft') is None:  # never imports peft itself
        return {}
    from peft.tuners.tuners_utils import BaseTunerLayer
    return {n: m for n, m in model.named_modules()
            if isinstance(m, BaseTunerLayer)}


def hf_adapter_keys(model: nn.Module) -> List[str]:
    """State-dict keys of the ``peft`` adapters (not of the base layers).

    Args:
        model (nn.Module): Any model.

    Returns:
        list[str]: E.g. ``backbone.conv1.conv.hada_w1_a.default``.
    """
    keys = []
    for name, layer in hf_tuner_layers(model).items():
        own = set(layer.adapter_layer_names)
        keys += [f'{name}.{k}' for k in layer.state_dict()
                 if k.split('.')[0] in own]
    return keys


def mark_hf_trainable(model: nn.Module) -> int:
    """Adapters of ``peft`` layers train, their base weights stay frozen.

    Run after the freezing policy, whose patterns may have frozen the
    adapters (``frozen='.*'``) or unfrozen a base layer (``'neck'``).
    Base weights that a pattern selected stay frozen, counted in a
    warning; base biases stay frozen as with our LoRA layers (the
    documented exception of ``freeze.bias_norm``).

    Args:
        model (nn.Module): The model, changed in place.

    Returns:
        int: The number of trainable adapter values.
    """
    numel, overridden = 0, []
    for name, layer in hf_tuner_layers(model).items():
        own = set(layer.adapter_layer_names)
        for pname, param in layer.named_parameters():
            adapter = pname.split('.')[0] in own
            if not adapter and param.requires_grad and \
                    not pname.endswith('bias'):
                overridden.append(f'{name}.{pname}')
            param.requires_grad_(adapter)
            numel += param.numel() if adapter else 0
    if overridden:
        MMLogger.get_current_instance().warning(
            f'{len(overridden)} base-layer weights under peft adapters stay '
            f'frozen although the freeze policy selects them (e.g. '
            f'{overridden[0]}): the adapter trains in their place')
    return numel


def merge_hf_peft(model: nn.Module) -> List[str]:
    """Fold every ``peft`` adapter into its base layer, in place.

    Each ``peft`` layer runs its own ``merge()`` and is replaced by its
    base layer, as ``peft``'s ``merge_and_unload`` does, so the state-dict
    keys become those of the model without ``peft``.

    Args:
        model (nn.Module): A model with ``peft`` layers.

    Returns:
        list[str]: The names of the merged layers.
    """
    layers = hf_tuner_layers(model)
    for name, layer in layers.items():
        layer.merge()
        _set_submodule(model, name, layer.get_base_layer())
    if layers and hasattr(model, 'peft_config'):
        del model.peft_config
    return list(layers)


def remap_base_keys(state: Mapping, model: nn.Module) -> 'OrderedDict':
    """Map a plain checkpoint's keys onto a ``peft`` model's base layers.

    ``neck.conv.weight`` becomes ``neck.conv.base_layer.weight`` where the
    model has the latter and not the former; other keys are kept.

    Args:
        state (Mapping): A state dict of the model without ``peft``.
        model (nn.Module): The model with ``peft`` layers.

    Returns:
        OrderedDict: The state dict with remapped keys.
    """
    own = model.state_dict()
    out = OrderedDict()
    for key, value in state.items():
        prefix, _, leaf = key.rpartition('.')
        moved = f'{prefix}.base_layer.{leaf}'
        out[moved if key not in own and moved in own else key] = value
    return out


def inject_backend(model: nn.Module, backend: str, peft_cfg: Optional[dict],
                   lora: Optional[dict], freeze: dict) -> None:
    """``PEFTDetector``'s ``backend`` / ``peft_cfg`` keys, validated.

    Args:
        model (nn.Module): The built detector, changed in place.
        backend (str): ``'native'`` (our LoRA, the default) or ``'peft'``.
        peft_cfg (dict, optional): The ``peft`` method, see
            :func:`inject_hf_peft`; only with ``backend='peft'``.
        lora (dict, optional): The native LoRA settings (must be None with
            ``backend='peft'``).
        freeze (dict): The freezing policy; with ``peft``, ``frozen``
            defaults to ``'.*'``.

    Raises:
        ValueError: For an unknown backend or keys that do not fit it.
    """
    if backend not in BACKENDS:
        raise ValueError(f'PEFTDetector backend must be one of {BACKENDS}, '
                         f'got {backend!r}')
    if backend == 'native':
        if peft_cfg is not None:
            raise ValueError("PEFTDetector peft_cfg needs backend='peft'")
        return
    if lora is not None or peft_cfg is None:
        raise ValueError(
            "PEFTDetector backend='peft' takes the method in peft_cfg "
            "(e.g. dict(type='LoRA', r=4, lora_alpha=8, target_modules="
            '...)), not in lora')
    inject_hf_peft(model, peft_cfg)
    freeze.setdefault('frozen', '.*')


def _init_weights_around_adapters(self: nn.Module) -> None:
    """The detector's ``init_weights`` with its ``peft`` layers taken out.

    mmengine's initialisers match layers by class name, and ``peft``'s
    wrappers and LoRA factors are named ``Conv2d`` / ``Linear``: they would
    re-initialise ``lora_B`` (no longer zero) or fail on DoRA. Here they see
    the plain base layers only, as in the model without ``peft``.
    """
    layers = hf_tuner_layers(self)
    for name, layer in layers.items():
        _set_submodule(self, name, layer.get_base_layer())
    try:
        type(self).init_weights(self)
    finally:
        for name, layer in layers.items():
            _set_submodule(self, name, layer)
    for layer in layers.values():
        _refresh_dora(layer)


@torch.no_grad()
def _refresh_dora(layer: nn.Module) -> None:
    """Recompute DoRA magnitudes from the (re-initialised) base weight.

    In place, so an optimizer that holds the parameter keeps it.
    """
    for adapter, magnitude in getattr(layer, 'lora_magnitude_vector',
                                      {}).items():
        old = magnitude.weight
        magnitude.update_layer(
            base_layer=layer.get_base_layer(),
            lora_A=layer.lora_A[adapter].weight,
            lora_B=layer.lora_B[adapter].weight,
            scaling=layer.scaling[adapter])
        old.copy_(magnitude.weight.reshape(old.shape))
        magnitude.weight = old


def _plain_keys_onto_base_layers(model: nn.Module, state_dict: dict,
                                 prefix: str, *args) -> None:
    """Load-state-dict pre-hook: a plain checkpoint fills the base layers.

    ``peft`` moves a wrapped layer's tensors to ``<layer>.base_layer.*``, so
    a ``load_from`` of the model without ``peft`` (mmengine loads with
    ``strict=False``) would leave every targeted layer at its
    initialisation with only a missing-key warning. Keys are remapped in
    place, as :func:`remap_base_keys` does, before any child loads.
    """
    local = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    remapped = remap_base_keys(dict.fromkeys(local), model)
    for plain, moved in zip(local, remapped):
        if moved != plain:
            state_dict[prefix + moved] = state_dict.pop(prefix + plain)


def _refresh_dora_after_load(model: nn.Module, incompatible) -> None:
    """Recompute DoRA magnitudes a loaded state dict did not carry."""
    missing = set(incompatible.missing_keys)
    for name, layer in hf_tuner_layers(model).items():
        vectors = getattr(layer, 'lora_magnitude_vector', {})
        if any(f'{name}.lora_magnitude_vector.{a}.weight' in missing
               for a in vectors):
            _refresh_dora(layer)


def finish_hf(model: nn.Module) -> None:
    """After the freezing policy: adapters train, and stay trainable.

    Args:
        model (nn.Module): The model, changed in place.

    Raises:
        ValueError: If the model's own ``train()`` freezes adapters (a
            backbone's ``frozen_stages``).
    """
    if not hf_tuner_layers(model):
        return
    numel = mark_hf_trainable(model)
    model.init_weights = types.MethodType(_init_weights_around_adapters,
                                          model)
    model.register_load_state_dict_pre_hook(_plain_keys_onto_base_layers)
    model.register_load_state_dict_post_hook(_refresh_dora_after_load)
    model.train()
    keys = set(hf_adapter_keys(model))
    dead = [n for n, p in model.named_parameters()
            if n in keys and not p.requires_grad]
    if dead:
        raise ValueError(
            f'{len(dead)} peft adapter parameters are frozen by the model '
            f'itself in train(), e.g. {dead[0]} (a backbone\'s '
            'frozen_stages?). Exclude those layers from '
            'peft_cfg.target_modules.')
    MMLogger.get_current_instance().info(
        f'With the peft adapters ({numel:,} trainable values):\n' +
        parameter_table(model))
