"""Adapters kept on the root model and run in forward hooks.

Conv adapters and feature prompts live in a ``ModuleDict`` of the root
model (keyed by the adapted module's name with ``__`` for dots) and run in
forward hooks on the adapted modules, so the base state-dict keys do not
change.
"""
from typing import Dict

from torch import nn

__all__ = ['attach', 'attached', 'detach', 'hooked']


def attach(model: nn.Module, store: str, name: str,
           adapter: nn.Module) -> None:
    """Keep ``adapter`` in ``model.<store>`` and hook it on ``name``.

    Args:
        model (nn.Module): The root model (not a ``Sequential``).
        store (str): The ``ModuleDict`` attribute, created if absent.
        name (str): The adapted module's name.
        adapter (nn.Module): Has ``hook(module, args, output)``.
    """
    if isinstance(model, (nn.Sequential, nn.ModuleList)):
        raise TypeError('adapters need a root model that is not an '
                        f'{type(model).__name__}; wrap it in a Module')
    if not hasattr(model, store):
        setattr(model, store, nn.ModuleDict())
    box, key = getattr(model, store), name.replace('.', '__')
    if key in box:
        raise ValueError(f'{name} already has an entry in {store}')
    box[key] = adapter
    model.get_submodule(name).register_forward_hook(adapter.hook)


def attached(model: nn.Module, store: str) -> Dict[str, nn.Module]:
    """The adapters of ``model.<store>`` by adapted module name.

    Args:
        model (nn.Module): The root model.
        store (str): The ``ModuleDict`` attribute.

    Returns:
        dict[str, nn.Module]: Adapted module name -> adapter.
    """
    box = getattr(model, store, None) or {}
    return {k.replace('__', '.'): v for k, v in box.items()}


def hooked(model: nn.Module, name: str, adapter: nn.Module) -> nn.Module:
    """The module that carries ``adapter``'s hook: ``name`` itself, or the
    base layer inside it where ``peft`` wrapped it after the adapter came.

    Args:
        model (nn.Module): The root model.
        name (str): The adapted module's name.
        adapter (nn.Module): The adapter.

    Returns:
        nn.Module: The hooked module (``name``'s module if none is).
    """
    module = outer = model.get_submodule(name)
    while True:
        if any(getattr(fn, '__self__', None) is adapter
               for fn in module._forward_hooks.values()):
            return module
        inner = getattr(module, 'base_layer', None)
        if not isinstance(inner, nn.Module):
            return outer
        module = inner


def detach(model: nn.Module, store: str, name: str) -> None:
    """Remove the adapter of ``name`` from ``model.<store>`` and its hook.

    Args:
        model (nn.Module): The root model.
        store (str): The ``ModuleDict`` attribute.
        name (str): The adapted module's name.
    """
    box = getattr(model, store)
    adapter = box[name.replace('.', '__')]
    _remove_hook(hooked(model, name, adapter), adapter)
    del box[name.replace('.', '__')]
    if not len(box):
        delattr(model, store)


def _remove_hook(module: nn.Module, owner: nn.Module) -> None:
    for key, fn in list(module._forward_hooks.items()):
        if getattr(fn, '__self__', None) is owner:
            del module._forward_hooks[key]
