"""Merge overlay config files (tracking, hooks) into a loaded config.

mmengine refuses two ``_base_`` files that define the same key, and every
full config already has a ``visualizer`` and ``default_hooks``; so the
snippets under ``configs/_base_/tracking/`` and ``configs/_base_/hooks/``
are merged *over* a config instead: dicts merge key by key, lists and
other values replace, exactly as ``--cfg-options`` does, except
``custom_hooks``: the config's hooks of a kind the overlay does not list
(neither its class, a subclass nor a base class of one of the overlay's)
are kept after the overlay's (an EMA config stays an EMA config), and
logged. An overlay's empty ``custom_hooks = []`` removes them all.
"""
from typing import Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from .config_types import cfg_type_name


def apply_overlays(cfg: Config, paths: Sequence[str]) -> Config:
    """Merge each overlay file over ``cfg``, in order.

    Args:
        cfg (Config): The loaded config; modified in place.
        paths (Sequence[str]): Overlay config files.

    Returns:
        Config: ``cfg``.
    """
    for path in paths or ():
        overlay = Config.fromfile(path).to_dict()
        own = list(cfg.get('custom_hooks', None) or [])
        if overlay.get('custom_hooks') and own:
            listed = [_hook_class(h) for h in overlay['custom_hooks']]
            kept = [h for h in own if not _same_kind(_hook_class(h), listed)]
            overlay['custom_hooks'] = list(overlay['custom_hooks']) + kept
            if kept:
                print_log(f'overlay {path}: the config\'s own '
                          f'{", ".join(cfg_type_name(h) for h in kept)} '
                          'kept after its custom_hooks', 'current')
        cfg.merge_from_dict(overlay)
    return cfg


def _hook_class(hook_cfg) -> object:
    """The registered class of a hook config (its type name if unknown)."""
    from mmdet.registry import HOOKS
    name = cfg_type_name(hook_cfg)
    return HOOKS.get(name) or name


def _same_kind(cls, listed) -> bool:
    """Whether ``cls`` is, subclasses or is a base of a listed class
    (mmengine's EarlyStoppingHook and our resumable one are one kind)."""
    for other in listed:
        if cls == other or (isinstance(cls, type) and isinstance(other, type)
                            and (issubclass(cls, other)
                                 or issubclass(other, cls))):
            return True
    return False
