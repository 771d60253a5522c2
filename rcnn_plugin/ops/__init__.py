"""mmcv's compiled ops, served by torchvision where mmcv has none.

Importing this package installs :class:`ext_finder.TorchvisionExtFinder`
(idempotent). It imports the standard library only, so it must be
imported before mmcv.ops: ``rcnn_plugin/__init__.py`` imports it first,
and the ``.pth`` written by :func:`write_pth` installs the finder at
interpreter start.
"""
from .ext_finder import (
    compiled_ext_available,
    install,
    is_served,
    load_served,
    pth_line,
    use_ext,
    write_pth,
)

install()


def describe() -> str:
    """Say which mmcv ops this interpreter uses, in one line.

    Returns:
        str: e.g. ``'mmcv 2.1.0, ops served by torchvision 0.29.1'`` or
        ``'mmcv 2.1.0, compiled ops'``.
    """
    import mmcv
    if compiled_ext_available():
        return f'mmcv {mmcv.__version__}, compiled ops'
    import torchvision
    return (f'mmcv {mmcv.__version__}, ops served by torchvision '
            f'{torchvision.__version__}')


__all__ = [
    'describe', 'install', 'is_served', 'compiled_ext_available',
    'load_served', 'pth_line', 'use_ext', 'write_pth'
]
