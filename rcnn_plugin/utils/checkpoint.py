"""Safe checkpoint loading for torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine
0.10.7 calls ``torch.load`` without the argument, so resuming from its own
checkpoints fails with ``UnpicklingError``: they hold a ``HistoryBuffer``
from the message hub and numpy arrays and scalars.

We keep ``weights_only=True`` and allowlist exactly the types that mmengine
and mmdet checkpoints carry. A checkpoint that pickles any other object is
refused with an error naming the types. A user who trusts a given file opts
in for that file only, by listing it in ``RCNN_PLUGIN_TRUSTED_CHECKPOINTS``
(paths separated by ``os.pathsep``) or by calling
:func:`trust_checkpoint`. ``weights_only`` is never switched off globally.
"""
import inspect
import os
import os.path as osp
import pickle
from typing import Any, Callable, List, Optional, Set

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'RCNN_PLUGIN_TRUSTED_CHECKPOINTS'
_trusted_files: Set[str] = set()


def _numpy_globals() -> List[Any]:
    """Numpy objects that pickled arrays, dtypes and scalars refer to."""
    try:  # numpy >= 2 moved the pickling helpers to numpy._core.
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(name)) for name in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
        'uint32', 'uint64', 'float16', 'float32', 'float64', 'str')]
    # Checkpoints written under numpy 1.x name the helpers numpy.core.*.
    legacy = [(_reconstruct, 'numpy.core.multiarray._reconstruct'),
              (scalar, 'numpy.core.multiarray.scalar')]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes,
            *legacy]


# OneCycleParamScheduler.anneal_func, kept in its state_dict
_ANNEALING = ('_annealing_cos', '_annealing_linear')


class _OneCycleName:
    """Stands for ``OneCycleParamScheduler`` in a pickle: the restricted
    ``getattr`` serves its two annealing functions from it, and nothing
    else can be done with it (the class itself is not allowed)."""


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """Restricted stand-in for ``getattr`` while unpickling.

    ``HistoryBuffer.__getstate__`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``, and a ``OneCycleLR`` state its
    annealing function as ``getattr(OneCycleParamScheduler,
    '_annealing_cos')``. Allowing the real ``getattr`` would open every
    attribute of every allowed object (``__class__``, ``__subclasses__``,
    ``__globals__``) to the pickle. This allows only public functions of
    ``HistoryBuffer`` and the two annealing functions.

    Args:
        obj (Any): The object the pickle asks an attribute of.
        name (str): The attribute name.

    Returns:
        Any: ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if (obj is HistoryBuffer and not name.startswith('_')
            and inspect.isfunction(inspect.getattr_static(obj, name, None))):
        return getattr(obj, name)
    if obj is _OneCycleName and name in _ANNEALING:
        return getattr(OneCycleParamScheduler, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def safe_globals() -> List[Any]:
    """Return the allowlist used for mmengine/mmdet checkpoints.

    Returns:
        list: ``HistoryBuffer``, a restricted ``getattr`` for its
        statistics methods, and the numpy reconstruction helpers, array,
        dtype and scalar types.
    """
    return [HistoryBuffer,
            (_OneCycleName, 'mmengine.optim.scheduler.param_scheduler.'
             'OneCycleParamScheduler'),
            (history_buffer_getattr, 'builtins.getattr'),
            *_numpy_globals()]


def trust_checkpoint(filename: str) -> None:
    """Allow full unpickling of one checkpoint file that you trust.

    Args:
        filename (str): Path of the checkpoint. Only this exact file (after
            resolving symlinks) is loaded with ``weights_only=False``.
    """
    _trusted_files.add(osp.realpath(osp.expanduser(filename)))


def _is_trusted(filename: str) -> bool:
    real = osp.realpath(filename)
    env = [p for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p]
    return real in _trusted_files or real in {
        osp.realpath(osp.expanduser(p)) for p in env}


def _unsafe_types(filename: str) -> List[str]:
    """List the globals in ``filename`` that the allowlist does not cover."""
    allowed = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in safe_globals()
    }
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # noqa: BLE001 - only used to improve the message
        return []
    return sorted(set(found) - allowed)


class UnsafeCheckpointError(pickle.UnpicklingError, ValueError):
    """A checkpoint pickles objects outside the allowlist.

    Also a ``ValueError``: the tools report bad input they catch as one
    sentence, and this is bad input.
    """


def load_checkpoint_safely(filename: str,
                           map_location: Optional[Any] = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and our allowlist.

    Args:
        filename (str): Local path of the checkpoint.
        map_location (str | torch.device | Callable, optional): Same as
            :func:`torch.load`. Defaults to None.

    Returns:
        Any: The unpickled checkpoint, usually a dict.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        UnsafeCheckpointError: If the file pickles a type outside the
            allowlist and has not been trusted explicitly.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if _is_trusted(filename):
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        types = _unsafe_types(filename) or ['(see the torch error below)']
        raise UnsafeCheckpointError(
            f'Refusing to unpickle {filename}: it contains objects outside '
            f'the checkpoint allowlist: {", ".join(types)}. Unpickling them '
            'could run arbitrary code. If you trust this file, set '
            f'{TRUST_ENV}={osp.abspath(filename)} (several paths separated '
            f'by "{os.pathsep}") or call '
            'rcnn_plugin.engine.trust_checkpoint(path) before loading.\n'
            f'torch said: {err}') from err


def register_safe_local_loader() -> Callable:
    """Make mmengine load local checkpoints through
    :func:`load_checkpoint_safely`.

    This replaces mmengine's loader for plain paths (the ``''`` scheme), used
    by ``load_from``, ``resume`` and ``Pretrained`` init with a local file.

    Returns:
        Callable: The registered loader.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_checkpoint_safely, force=True)
    return load_checkpoint_safely
