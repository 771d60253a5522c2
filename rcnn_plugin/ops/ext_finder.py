"""Serve ``mmcv._ext`` from torchvision when mmcv has no compiled ops.

mmcv-lite ships mmcv's Python code without the compiled ``mmcv._ext``, so
``import mmcv.ops`` (and with it ``import mmdet.models``) fails. The
finder below resolves that one name, ``mmcv._ext``, to the pure-Python
package ``rcnn_plugin/ops/mmcv_ext/`` whose kernels torchvision serves. It
is appended to the END of ``sys.meta_path``: the standard path finder,
earlier in the list, finds a compiled ``mmcv/_ext*.so`` first, so a
compiled mmcv always wins.

This file imports the standard library only and nothing of rcnn_plugin,
so that a ``.pth`` line can load it by file path at interpreter start
(bare ``python``, pytest, ``torchrun`` workers), before mmcv is imported::

    python rcnn_plugin/ops/ext_finder.py --write-pth [SITE_PACKAGES_DIR]
"""
import argparse
import contextlib
import importlib.abc
import importlib.util
import os.path as osp
import sys
import sysconfig
from types import ModuleType
from typing import Iterator, Optional, Sequence

__all__ = [
    'TorchvisionExtFinder', 'install', 'is_served', 'compiled_ext_available',
    'load_served', 'pth_line', 'use_ext', 'write_pth'
]

EXT_NAME = 'mmcv._ext'
SERVED_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'mmcv_ext')
PTH_NAME = 'rcnn_plugin_mmcv_ext.pth'
# The module name the .pth line loads this file under.
FINDER_MODULE = 'rcnn_plugin_ext_finder'
# Marks our finders, also those of another copy of this file.
_MARK = 'rcnn_plugin_mmcv_ext'


def _served_spec(name: str):
    return importlib.util.spec_from_file_location(
        name,
        osp.join(SERVED_DIR, '__init__.py'),
        submodule_search_locations=[SERVED_DIR])


class TorchvisionExtFinder(importlib.abc.MetaPathFinder):
    """A meta path finder that resolves ``mmcv._ext`` to the served ops."""

    rcnn_plugin_mmcv_ext = True

    def find_spec(self,
                  fullname: str,
                  path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None):
        """The served package's spec for ``mmcv._ext``, else None.

        Args:
            fullname (str): The module being imported.
            path (Sequence[str], optional): The parent package's path.
            target (ModuleType, optional): A module being reloaded.

        Returns:
            ModuleSpec | None: The spec, for ``mmcv._ext`` only.
        """
        if fullname != EXT_NAME:
            return None
        return _served_spec(EXT_NAME)


def _ours(finder) -> bool:
    return getattr(finder, _MARK, False) is True


def install() -> bool:
    """Append the finder to ``sys.meta_path`` unless one is there already.

    Returns:
        bool: True if it was added by this call.
    """
    if any(_ours(finder) for finder in sys.meta_path):
        return False
    sys.meta_path.append(TorchvisionExtFinder())
    return True


def is_served() -> bool:
    """Whether the imported ``mmcv._ext`` is the torchvision-backed one.

    Returns:
        bool: False also when ``mmcv._ext`` is not imported yet.
    """
    module = sys.modules.get(EXT_NAME)
    return getattr(module, 'RCNN_PLUGIN_SERVED', False) is True


def compiled_ext_available() -> bool:
    """Whether a compiled ``mmcv._ext`` can be imported.

    Asks every finder of ``sys.meta_path`` but ours; imports mmcv (the
    Python package), not ``mmcv._ext``.

    Returns:
        bool: False without mmcv, or with mmcv-lite.
    """
    module = sys.modules.get(EXT_NAME)
    if module is not None:
        return not is_served()
    try:
        import mmcv
    except ImportError:
        return False
    for finder in sys.meta_path:
        find_spec = getattr(finder, 'find_spec', None)
        if _ours(finder) or find_spec is None:
            continue
        if find_spec(EXT_NAME, mmcv.__path__) is not None:
            return True
    return False


def load_served(name: str = 'rcnn_plugin_served_ext') -> ModuleType:
    """Import the served package under ``name``, beside any ``mmcv._ext``.

    For comparing the served kernels with a compiled ``mmcv._ext``.

    Args:
        name (str): The module name to load it as. Defaults to
            ``'rcnn_plugin_served_ext'``.

    Returns:
        ModuleType: The served package (reused if already loaded).
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = _served_spec(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@contextlib.contextmanager
def use_ext(ext: ModuleType) -> Iterator[None]:
    """Point every imported ``mmcv.ops`` wrapper at ``ext`` for a while.

    mmcv's wrappers keep the kernels module in a global ``ext_module``;
    this swaps it (e.g. to :func:`load_served`'s module where a compiled
    ``mmcv._ext`` is installed, to test or time the served kernels) and
    restores it on exit.

    Args:
        ext (ModuleType): A module with mmcv's ``_ext`` functions.
    """
    holders = [m for name, m in list(sys.modules.items())
               if name.startswith('mmcv.ops') and hasattr(m, 'ext_module')]
    saved = [m.ext_module for m in holders]
    for m in holders:
        m.ext_module = ext
    try:
        yield
    finally:
        for m, old in zip(holders, saved):
            m.ext_module = old


def pth_line(finder_path: Optional[str] = None) -> str:
    """The ``.pth`` line that loads this file by path and calls install().

    The line does nothing if the file is gone (a moved checkout) and
    imports nothing of rcnn_plugin, mmcv or torch.

    Args:
        finder_path (str, optional): Path of this file. Defaults to this
            file's absolute path.

    Returns:
        str: One line, starting with ``import`` as ``.pth`` lines must.
    """
    path = osp.abspath(finder_path or __file__)
    return (f'import os, sys, importlib.util as u; p = {path!r}; '
            f'n = {FINDER_MODULE!r}; '
            's = n not in sys.modules and os.path.isfile(p) and '
            'u.spec_from_file_location(n, p); '
            'm = s and u.module_from_spec(s); '
            's and sys.modules.__setitem__(n, m); '
            's and s.loader.exec_module(m); '
            'n in sys.modules and sys.modules[n].install()')


def write_pth(site_packages_dir: str) -> str:
    """Write ``rcnn_plugin_mmcv_ext.pth`` into a site-packages folder.

    Args:
        site_packages_dir (str): A folder the interpreter scans for
            ``.pth`` files (``site.getsitepackages()``), or one passed to
            ``site.addsitedir``.

    Returns:
        str: The path of the written file.
    """
    path = osp.join(site_packages_dir, PTH_NAME)
    with open(path, 'w') as f:
        f.write(pth_line() + '\n')
    return path


def _main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--write-pth',
        metavar='SITE_DIR',
        nargs='?',
        const=sysconfig.get_paths()['purelib'],
        help='write the .pth into SITE_DIR (default: this interpreter\'s '
        'site-packages)')
    args = parser.parse_args(argv)
    if args.write_pth is None:
        parser.error('nothing to do: pass --write-pth [SITE_DIR]')
    print(write_pth(args.write_pth))


if __name__ == '__main__':
    _main()
