"""Merge overlay config files (tracking, hooks) into a loaded config.

mmengine refuses two ``_base_`` files that define the same key, and every
full config already has a ``visualizer`` and ``default_hooks``; so the
snippets under ``configs/_base_/tracking/`` and ``configs/_base_/hooks/``
are merged *over* a config instead: dicts merge key by key, lists and
other values replace, exactly as ``--cfg-options`` does.
"""
from typing import Sequence

from mmengine.config import Config


def apply_overlays(cfg: Config, paths: Sequence[str]) -> Config:
    """Merge each overlay file over ``cfg``, in order.

    Args:
        cfg (Config): The loaded config; modified in place.
        paths (Sequence[str]): Overlay config files.

    Returns:
        Config: ``cfg``.
    """
    for path in paths or ():
        overlay = Config.fromfile(path)
        cfg.merge_from_dict(overlay.to_dict())
    return cfg
