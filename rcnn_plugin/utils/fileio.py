"""Writing result files so that an interruption never leaves half a file."""
import os
import os.path as osp
from contextlib import contextmanager
from typing import IO, Iterator

__all__ = ['atomic_open']


@contextmanager
def atomic_open(path: str, mode: str = 'w', **kwargs) -> Iterator[IO]:
    """Open ``<path>.<pid>.tmp`` for writing and move it onto ``path`` only
    when the block ends without an error.

    A kill or an exception mid-write leaves the earlier ``path`` whole (and
    at most a stray ``.tmp``), never a truncated file that a later run
    would read as valid. Two processes writing the same file each replace
    it whole.

    Args:
        path (str): The file to write.
        mode (str): ``'w'`` or ``'wb'``. Defaults to ``'w'``.
        **kwargs: Passed to :func:`open` (for example ``encoding``).

    Example:
        >>> with atomic_open('split.json') as f:
        ...     json.dump(split, f)
    """
    if 'w' not in mode:
        raise ValueError(f'atomic_open writes; got mode {mode!r}')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
