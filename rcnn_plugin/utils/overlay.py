"""Merge overlay config files (tracking, hooks) into a loaded config.

mmengine refuses two ``_base_`` files that define the same key, and every
full config already has a ``visualizer`` and ``default_hooks``; so the
snippets under ``configs/_base_/tracking/`` and ``configs/_base_/hooks/``
are merged *over* a config instead: dicts merge key by key, lists and
other values replace, exactly as ``--cfg-options`` does, except
``custom_hooks``: the config's hooks of a type the overlay does not list
are kept after the overlay's (an EMA config stays an EMA config), and
logged.
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
        if 'custom_hooks' in overlay and own:
            listed = {cfg_type_name(h) for h in overlay['custom_hooks']}
            kept = [h for h in own if cfg_type_name(h) not in listed]
            overlay['custom_hooks'] = list(overlay['custom_hooks']) + kept
            if kept:
                print_log(f'overlay {path}: the config\'s own '
                          f'{", ".join(cfg_type_name(h) for h in kept)} '
                          'kept after its custom_hooks', 'current')
        cfg.merge_from_dict(overlay)
    return cfg
