"""Put LoRA layers into a built model, and fold them back out.

Target modules are chosen by a regular expression that must match a
module's full dotted name (``re.fullmatch``), e.g.
``backbone.layer[34].*conv2|neck.*|roi_head.bbox_head.shared_fcs.*``.
Among the matched modules, every plain ``nn.Conv2d`` / ``nn.Linear``
(including the ``conv`` inside mmcv's ``ConvModule``) gets a LoRA update;
other matched modules (norms, activations, containers) are passed over.
"""
import difflib
import re
from typing import Dict, Iterable, List

from torch import nn

from .lora_layers import (
    PLAIN_CONV_TYPES,
    PLAIN_LINEAR_TYPES,
    LoRAConv2d,
    LoRALinear,
)

LORA_TYPES = (LoRAConv2d, LoRALinear)


def no_match_error(what: str, pattern: str,
                   names: Iterable[str]) -> ValueError:
    """A ``ValueError`` for a pattern that matched no module name.

    Args:
        what (str): What was being selected, e.g. ``'lora.target_modules'``.
        pattern (str): The pattern that matched nothing.
        names (Iterable[str]): The names it was matched against.

    Returns:
        ValueError: The error, listing the closest names (difflib).
    """
    names = [n for n in names if n]
    close = difflib.get_close_matches(pattern, names, n=8, cutoff=0.3)
    if not close:  # compare with the literal part of the pattern
        stem = re.split(r'[\\\[\](){}*+?|^$]', pattern)[0]
        close = difflib.get_close_matches(stem, names, n=8, cutoff=0.3)
    hint = ', '.join(close) if close else ', '.join(names[:8])
    return ValueError(
        f'{what}={pattern!r} matches no module name (the pattern must match '
        f'a whole dotted name, e.g. "neck.fpn_convs.0.conv"). Close names: '
        f'{hint}')


def _compile(pattern: str, what: str) -> 're.Pattern':
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f'{what} must be a non-empty regex string, got '
                        f'{pattern!r}')
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ValueError(f'{what}={pattern!r} is not a valid regex: '
                         f'{err}') from err


def _lora_candidate(name: str, module: nn.Module) -> bool:
    """Whether a matched module is a layer LoRA can wrap; raise if odd."""
    if isinstance(module, LORA_TYPES):
        raise ValueError(f'{name} already has LoRA; apply LoRA once')
    if type(module) in PLAIN_CONV_TYPES + PLAIN_LINEAR_TYPES:
        return True
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        base = 'Conv2d' if isinstance(module, nn.Conv2d) else 'Linear'
        raise TypeError(
            f'{name} is a {type(module).__name__}, a subclass of nn.{base} '
            'with its own forward; LoRA only wraps plain nn.Conv2d and '
            'nn.Linear layers. Narrow lora.target_modules to exclude it.')
    return False


def find_lora_targets(model: nn.Module, target_modules: str,
                      what: str = 'lora.target_modules') -> List[str]:
    """Names of the layers that ``target_modules`` selects for LoRA.

    Args:
        model (nn.Module): The built model.
        target_modules (str): Regex, fully matched against module names.
        what (str): The config key, for error messages.
            Defaults to 'lora.target_modules'.

    Returns:
        list[str]: Names of plain ``Conv2d`` / ``Linear`` layers that the
        regex or one of its matched ancestors selects, in model order.

    Raises:
        ValueError: If no layer is selected; the message lists close names.
        TypeError: If a selected layer is a ``Conv2d`` / ``Linear``
            subclass with its own forward (e.g. weight standardisation).
    """
    regex = _compile(target_modules, what)
    matched: List[str] = []
    targets: List[str] = []
    for name, module in model.named_modules():
        selected = regex.fullmatch(name) is not None or any(
            name.startswith(m + '.') for m in matched)
        if regex.fullmatch(name):
            matched.append(name)
        if selected and _lora_candidate(name, module):
            targets.append(name)
    if not targets:
        layers = [n for n, m in model.named_modules()
                  if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise no_match_error(what, target_modules,
                             layers if matched else
                             [n for n, _ in model.named_modules()])
    return targets


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition('.')
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _move_hooks(old: nn.Module, new: nn.Module) -> None:
    """Give ``new`` the forward hooks of the layer it replaces: a conv
    adapter or feature prompt on a layer is a hook on it, and would stop
    applying (still trainable, never called) on a replaced layer."""
    for attr in ('_forward_hooks', '_forward_pre_hooks',
                 '_forward_hooks_with_kwargs', '_forward_hooks_always_called',
                 '_forward_pre_hooks_with_kwargs'):
        if hasattr(old, attr):
            getattr(new, attr).update(getattr(old, attr))


def inject_lora(model: nn.Module,
                target_modules: str,
                rank: int = 8,
                alpha: float = 16,
                dropout: float = 0.0) -> List[str]:
    """Replace the selected layers by LoRA layers, in place.

    The new layers share the old ones' ``weight`` / ``bias`` (now frozen)
    and keep their state-dict keys; the update starts at zero.

    Args:
        model (nn.Module): The built model.
        target_modules (str): Regex over module names, see
            :func:`find_lora_targets`.
        rank (int): LoRA rank r (per group for grouped convolutions).
            Defaults to 8.
        alpha (float): The update is scaled by alpha / r. Defaults to 16.
        dropout (float): Dropout on the LoRA branch input. Defaults to 0.

    Returns:
        list[str]: The names of the layers that got LoRA.
    """
    targets = find_lora_targets(model, target_modules)
    for name in targets:
        layer = model.get_submodule(name)
        if isinstance(layer, nn.Conv2d):
            new = LoRAConv2d.from_conv(layer, rank, alpha, dropout)
        else:
            new = LoRALinear.from_linear(layer, rank, alpha, dropout)
        _move_hooks(layer, new)
        _set_submodule(model, name, new)
    return targets


def lora_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """The model's LoRA layers by name.

    Args:
        model (nn.Module): Any model.

    Returns:
        dict[str, nn.Module]: ``LoRAConv2d`` / ``LoRALinear`` layers.
    """
    return {n: m for n, m in model.named_modules()
            if isinstance(m, LORA_TYPES)}


def merge_lora(model: nn.Module) -> List[str]:
    """Fold every LoRA update into its base weight, in place.

    Each LoRA layer is replaced by a plain ``nn.Conv2d`` / ``nn.Linear``
    holding ``W + alpha / r * B A``; the state-dict keys of the result are
    those of the model without LoRA. Dropout is dropped: the merged model
    equals the unmerged one in eval mode. Forward hooks on a LoRA layer (a
    conv adapter or feature prompt on the same layer) move to the plain
    one.

    Args:
        model (nn.Module): A model with LoRA layers.

    Returns:
        list[str]: The names of the merged layers.
    """
    merged = lora_layers(model)
    for name, layer in merged.items():
        plain = layer.to_plain()
        _move_hooks(layer, plain)
        _set_submodule(model, name, plain)
    return list(merged)
