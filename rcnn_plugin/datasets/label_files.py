"""Label files matched by name, with the extension in any case.

Windows tools write ``000001.TXT``; the layout finder
(``rcnn_plugin/datasets/layouts``) reads the extension in any case, so the
datasets that it configures read it so too. On a case-sensitive file
system ``a.txt`` and ``a.TXT`` can both exist: the lower-case one is read
and the others are logged.
"""
import os.path as osp
from typing import Dict, Iterable

from mmengine.logging import print_log

__all__ = ['pick_label_files']


def pick_label_files(labels: Iterable[str], folder: str,
                     ext: str = '.txt') -> Dict[str, str]:
    """Map each stem to the one label file to read: ``a.txt`` over
    ``a.TXT`` (the files not read are counted and logged).

    Args:
        labels (Iterable[str]): Label files (relative to ``folder``) whose
            extension is ``ext`` in any case.
        folder (str): Their folder, for the log message.
        ext (str): The preferred, lower-case spelling of the extension.
            Defaults to '.txt'.

    Returns:
        dict[str, str]: Each stem (the path without its extension) to its
        label file, relative to ``folder``.
    """
    labels = sorted(labels, key=lambda p: (not p.endswith(ext), p))
    picked: Dict[str, str] = {}
    for rel in labels:
        picked.setdefault(osp.splitext(rel)[0], rel)
    unread = sorted(set(labels) - set(picked.values()))
    if unread:
        print_log(
            f'{len(unread)} label files under {folder} are not read: a file '
            f'of the same name is read instead (a lower-case {ext} first), '
            f'e.g. {unread[0]} ({picked[osp.splitext(unread[0])[0]]} is '
            'read)',
            logger='current', level=30)
    return picked
