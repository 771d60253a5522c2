"""Freezing policies, frozen BN statistics and the parameter table.

A freezing pattern selects modules by name. It is a regex matched against
the whole dotted name or against any dotted suffix of it, so the named
groups ``backbone``, ``neck``, ``rpn_head``, ``roi_head`` and
``bbox_head.fc_cls`` (which is ``roi_head.bbox_head.fc_cls`` in a two-stage
detector) are patterns too, and ``backbone.layer[1-4]`` selects four layers.
A selected module's parameters, all of them, stop requiring gradients.
"""
import re
from typing import Container, Dict, List, Optional, Sequence, Union

from mmengine.logging import MMLogger
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from .conv_adapter import is_adapter_param
from .inject import LORA_TYPES, no_match_error

NORM_TYPES = (_BatchNorm, nn.GroupNorm, nn.LayerNorm, _InstanceNorm)

_FROZEN_STATS_CLASSES: Dict[type, type] = {}


def _as_list(patterns: Union[str, Sequence[str], None]) -> List[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f'freeze patterns must be strings, got {patterns!r}')
    return list(patterns)


def select_modules(model: nn.Module, pattern: str,
                   what: str = 'freeze') -> List[str]:
    """Names of the modules that a freezing pattern selects.

    Args:
        model (nn.Module): The model.
        pattern (str): A regex, matched against whole names and their dotted
            suffixes (``bbox_head.fc_cls`` selects
            ``roi_head.bbox_head.fc_cls``).
        what (str): The config key, for the error message.
            Defaults to 'freeze'.

    Returns:
        list[str]: The selected module names ('' for the whole model).

    Raises:
        ValueError: If nothing matches; the message lists close names.
    """
    try:
        regex = re.compile(rf'(?:.*\.)?(?:{pattern})')
    except re.error as err:
        raise ValueError(f'{what}={pattern!r} is not a valid regex: '
                         f'{err}') from err
    names = [n for n, _ in model.named_modules()]
    selected = [n for n in names if regex.fullmatch(n)]
    if not selected:
        raise no_match_error(what, pattern, names)
    return selected


def set_requires_grad(model: nn.Module,
                      patterns: Union[str, Sequence[str], None],
                      requires_grad: bool,
                      what: str = 'freeze') -> List[str]:
    """Set ``requires_grad`` of every parameter under the selected modules.

    LoRA, adapter and prompt parameters (``lora_A``, ``lora_B``,
    ``conv_adapters.*``, ``*_prompt*``) are left as they are: freezing
    ``backbone`` freezes the backbone's base weights, not its adapters.

    Args:
        model (nn.Module): The model, changed in place.
        patterns (str | Sequence[str] | None): Freezing patterns, see
            :func:`select_modules`.
        requires_grad (bool): The value to set.
        what (str): The config key, for error messages.
            Defaults to 'freeze'.

    Returns:
        list[str]: The selected module names.
    """
    selected: List[str] = []
    for pattern in _as_list(patterns):
        for name in select_modules(model, pattern, what):
            selected.append(name)
            for pname, param in model.get_submodule(name).named_parameters():
                if not is_adapter_param(f'{name}.{pname}'):
                    param.requires_grad_(requires_grad)
    return selected


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train()`` of a norm layer whose statistics are frozen."""
    return nn.Module.train(self, False)


def _rebuild_frozen(base: type, state: dict) -> nn.Module:
    """Unpickle a stats-frozen BN layer: its plain class, then the swap."""
    module = base.__new__(base)
    module.__setstate__(state)
    module.__class__ = _frozen_stats_class(base)
    return module


def _reduce_frozen(self: nn.Module, protocol: int) -> tuple:
    """Pickle a stats-frozen BN layer through its plain class, so a fresh
    process (where the subclass does not exist yet) can load it."""
    return _rebuild_frozen, (type(self).__bases__[0], self.__getstate__())


def _frozen_stats_class(cls: type) -> type:
    if cls not in _FROZEN_STATS_CLASSES:
        _FROZEN_STATS_CLASSES[cls] = type(
            f'FrozenStats{cls.__name__}', (cls, ), {
                'train': _stay_in_eval,
                '__reduce_ex__': _reduce_frozen,
                '__module__': __name__,
                '__doc__': f'{cls.__name__} that stays in eval mode.'
            })
    return _FROZEN_STATS_CLASSES[cls]


def freeze_norm_stats(model: nn.Module,
                      names: Optional[Container[str]] = None) -> List[str]:
    """Keep frozen BN layers in eval mode, also after ``model.train()``.

    A BN layer is frozen when it has no parameter that requires gradients
    (or is in ``names``). Its class becomes a subclass whose ``train()``
    always sets eval mode, so it normalises with, and never updates, its
    running statistics; its affine parameters may still train. The
    state-dict keys do not change.

    Args:
        model (nn.Module): The model, changed in place.
        names (Container[str], optional): BN layers to freeze even though
            their affine parameters train (bias / norm tuning).
            Defaults to None.

    Returns:
        list[str]: Names of the BN layers now frozen.
    """
    frozen = []
    for name, module in model.named_modules():
        if not isinstance(module, _BatchNorm) or (
                name not in (names or ()) and any(
                    p.requires_grad for p in module.parameters())):
            continue
        if type(module) not in _FROZEN_STATS_CLASSES.values():
            module.__class__ = _frozen_stats_class(type(module))
        module.eval()
        frozen.append(name)
    # Kept on the model (a plain attribute: no state-dict key): a forward
    # pre-hook freezes again the layers that something replaced since.
    model._frozen_norm_stats = sorted(
        set(getattr(model, '_frozen_norm_stats', ())) | set(frozen))
    if frozen and not getattr(model, '_refreeze_hooked', False):
        model.register_forward_pre_hook(_refreeze_before_forward)
        model._refreeze_hooked = True
    return frozen


def _refreeze_before_forward(model: nn.Module, args) -> None:
    again = refreeze_norm_stats(model)
    if again:
        MMLogger.get_current_instance().warning(
            f'{len(again)} BN layers whose statistics the PEFT freeze keeps '
            'were replaced after the model was built (sync_bn / '
            'revert_sync_batchnorm); their statistics are frozen again: '
            f'{again[:5]}')


def refreeze_norm_stats(model: nn.Module) -> List[str]:
    """Freeze again the BN statistics that :func:`freeze_norm_stats` froze
    but whose layers were replaced since, e.g. by mmengine's ``sync_bn``
    (``convert_sync_batchnorm`` builds new, plain ``SyncBatchNorm``
    layers, whose statistics would otherwise update). It runs before
    every forward of a model :func:`freeze_norm_stats` ran on.

    Args:
        model (nn.Module): The model :func:`freeze_norm_stats` ran on,
            possibly changed since.

    Returns:
        list[str]: Names of the BN layers frozen again (empty when none
        was replaced).
    """
    names = set(getattr(model, '_frozen_norm_stats', ()))
    again = []
    for name, module in model.named_modules():
        if name in names and isinstance(module, _BatchNorm) \
                and not has_frozen_stats(module):
            module.__class__ = _frozen_stats_class(type(module))
            module.eval()
            again.append(name)
    return again


def has_frozen_stats(module: nn.Module) -> bool:
    """Whether :func:`freeze_norm_stats` froze this BN layer's statistics.

    Args:
        module (nn.Module): Any module.

    Returns:
        bool: True for a stats-frozen BN layer.
    """
    return type(module) in _FROZEN_STATS_CLASSES.values()


def unfreeze_norm_stats(model: nn.Module) -> List[str]:
    """Undo :func:`freeze_norm_stats` (the plain BN classes come back).

    Args:
        model (nn.Module): The model, changed in place.

    Returns:
        list[str]: Names of the BN layers restored.
    """
    restored = []
    for name, module in model.named_modules():
        if type(module) in _FROZEN_STATS_CLASSES.values():
            module.__class__ = type(module).__bases__[0]
            restored.append(name)
    model._frozen_norm_stats = []
    return restored


def _count(module: nn.Module, prefix: str = '') -> List[int]:
    total = trainable = lora = 0
    # full names: the adapter children (conv_adapters, prompts) sit on
    # the root, so a child's own names would not show them
    for pname, param in module.named_parameters(prefix=prefix):
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
        if is_adapter_param(pname) or '.lora_' in pname or \
                '.hada_' in pname or '.lokr_' in pname or \
                '.ia3_' in pname or 'lora_magnitude' in pname:
            lora += param.numel()
    return [total, trainable, total - trainable, lora]


def parameter_table(model: nn.Module) -> str:
    """A text table of parameters per top-level module.

    Columns: module, parameters, trainable, frozen, of which adapters
    (native LoRA, conv adapters, prompts and ``peft``'s LoRA / DoRA /
    LoHa / LoKr / IA3 tensors, counted in their module's totals),
    trainable %.

    Args:
        model (nn.Module): The model.

    Returns:
        str: The table, one row per direct child with parameters and a
        ``total`` row; numbers of the total are over the whole model.
    """
    header = ['module', 'params', 'trainable', 'frozen', 'lora', 'train %']
    rows = []
    for name, child in model.named_children():
        counts = _count(child, name)
        if counts[0]:
            rows.append([name] + counts)
    rows.append(['total'] + _count(model))
    cells = [header] + [[r[0]] + [f'{v:,}' for v in r[1:]] +
                        [f'{100.0 * r[2] / max(r[1], 1):.2f}'] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(cell, widths)))
             for cell in cells]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def set_bias_norm_trainable(
        model: nn.Module,
        patterns: Union[bool, str, Sequence[str]] = True) -> List[str]:
    """Bias / norm tuning (BitFit plus norm affine): train those only.

    Every ``bias`` parameter and every norm layer's ``weight`` / ``bias``
    (BN, GN, LN, IN) under the selected modules starts requiring
    gradients. mmdet's ResNet and MobileNetV2 convs have no bias, so in the
    backbone this is mostly BN gamma and beta.

    Args:
        model (nn.Module): The model, changed in place.
        patterns (bool | str | Sequence[str]): True for the whole model,
            or freezing patterns (see :func:`select_modules`).
            Defaults to True.

    Returns:
        list[str]: Names of the norm layers whose affine parameters train.
    """
    roots = [''] if patterns is True else [
        n for p in _as_list(patterns)
        for n in select_modules(model, p, 'freeze.bias_norm')]
    norms = []
    for root in roots:
        for name, module in model.get_submodule(root).named_modules():
            full = f'{root}.{name}'.strip('.')
            if isinstance(module, NORM_TYPES):
                norms.append(full)
                module.requires_grad_(True)
            elif isinstance(getattr(module, 'bias', None), nn.Parameter) \
                    and not isinstance(module, LORA_TYPES):
                module.bias.requires_grad_(True)
    return norms


def apply_freeze(model: nn.Module,
                 frozen: Union[str, Sequence[str], None] = None,
                 trainable: Union[str, Sequence[str], None] = None,
                 norm_eval: bool = True,
                 bias_norm: Union[bool, str, Sequence[str]] = False) -> None:
    """Apply a freezing policy and log the parameter table.

    Order: freeze ``frozen``, then re-enable ``trainable`` (so
    ``frozen='.*'``, ``trainable='bbox_head.fc_cls'`` trains one layer),
    then, with ``bias_norm``, train the biases and norm affine parameters
    (:func:`set_bias_norm_trainable`), then, if ``norm_eval``, keep the BN
    statistics of frozen BN layers and of the BN layers that ``bias_norm``
    selects (their gamma / beta train, their statistics stay). LoRA base
    weights stay frozen whatever the patterns say.

    Args:
        model (nn.Module): The model, changed in place.
        frozen (str | Sequence[str] | None): Patterns of modules to freeze.
            Defaults to None.
        trainable (str | Sequence[str] | None): Patterns of modules to
            train, applied after ``frozen``. Defaults to None.
        norm_eval (bool): Keep frozen BN layers in eval mode.
            Defaults to True.
        bias_norm (bool | str | Sequence[str]): Bias / norm tuning: True
            for the whole model or patterns of modules; False: off.
            Defaults to False.
    """
    set_requires_grad(model, frozen, False, 'freeze.frozen')
    set_requires_grad(model, trainable, True, 'freeze.trainable')
    for module in model.modules():
        if isinstance(module, LORA_TYPES):
            module.freeze_base()
    norms = set_bias_norm_trainable(model, bias_norm) if bias_norm else []
    if norm_eval:
        freeze_norm_stats(model, set(norms))
    # mmdet's train() applies frozen_stages: count after it, as training
    # sees the model
    was_training = model.training
    model.train()
    model.train(was_training)
    MMLogger.get_current_instance().info(
        'Trainable and frozen parameters (after the model\'s train(), '
        'which applies frozen_stages):\n' + parameter_table(model))
