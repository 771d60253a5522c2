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


def require_mmcv() -> None:
    """Raise a clear ImportError when no mmcv is installed.

    rcnn_plugin declares mmcv as one of two extras, as OpenMMLab installs it
    apart from mmdet; without either, mmdet's own import fails deep inside.

    Raises:
        ImportError: Naming the two ways to install mmcv.
    """
    try:
        import mmcv  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != 'mmcv':
            raise
        raise ImportError(
            'rcnn_plugin needs mmcv, which is not installed: pip install '
            "'rcnn_plugin[lite]' (mmcv-lite; mmcv's ops served by "
            "torchvision, no compiler) or 'rcnn_plugin[full]' (compiled "
            "mmcv), or run bash tools/setup_env.sh") from None


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


require_mmcv()

__all__ = [
    'describe', 'install', 'require_mmcv', 'is_served',
    'compiled_ext_available', 'load_served', 'pth_line', 'use_ext', 'write_pth'
]
