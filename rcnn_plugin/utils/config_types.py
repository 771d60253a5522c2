"""The class name of a config's ``type``, however the config wrote it.

mmengine builds from a registered name (``'Resize'``), a scoped name
(``'mmdet.Resize'``) or, in pure-Python configs, the class itself
(``type=Resize``). A check that compares ``cfg['type'] == 'Resize'`` sees
only the first and passes the other two by silently; ``str(cls)`` is
``"<class '...Resize'>"``, not a name. Checks of a user's config compare
types through :func:`type_name`. Where a registry name differs from the
class's (mmengine registers ``PretrainedInit`` as ``'Pretrained'``), the
check names both.
"""
from typing import Any

__all__ = ['cfg_type_name', 'type_name']


def type_name(kind: Any) -> str:
    """The class name of a ``type``: a name, a scoped name or a class.

    Returns ``''`` for None and for anything with neither a name nor a
    ``__name__``.
    """
    if isinstance(kind, str):
        return kind.split('.')[-1]
    return getattr(kind, '__name__', '')


def cfg_type_name(cfg: Any, default: Any = '') -> str:
    """:func:`type_name` of ``cfg['type']`` (``default`` where a dict has
    no ``type``); ``''`` for anything that is not a dict."""
    if not isinstance(cfg, dict):
        return ''
    return type_name(cfg.get('type', default))
