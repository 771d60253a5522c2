"""Finder for CSV box tables (one row per box, with a header)."""
import csv
import os.path as osp
from typing import Dict, List, Optional

from ..csv_style import match_columns, sniff_delimiter
from .base import Found, split_name
from .scan import (
    FolderIndex,
    clean_stem,
    image_prefix,
    path_parts,
    read_head,
)

__all__ = ['find_csv']

_MAX_DEPTH = 3


def _table(index: FolderIndex, rel: str) -> Optional[List[List[str]]]:
    """The rows of a CSV whose header names an image and 4 corners."""
    head = read_head(index.abs(rel), 1 << 30)
    lines = head.splitlines()
    if not lines:
        return None
    rows = list(csv.reader(lines, delimiter=sniff_delimiter(lines[0])))
    cols = match_columns(rows[0])
    if any(cols[r] is None for r in ('image', 'xmin', 'ymin', 'xmax',
                                     'ymax')):
        return None
    return rows


def find_csv(index: FolderIndex) -> Optional[Found]:
    """CSV files with a box header, up to 3 folders below the root.

    Classes: the label column's values, sorted (``'object'`` if there is
    no label column).

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None.
    """
    splits: Dict[str, dict] = {}
    names, num = set(), 0
    for rel in index.with_ext('.csv'):
        if len(path_parts(rel)) > _MAX_DEPTH:
            continue
        rows = _table(index, rel)
        if rows is None:
            continue
        cols = match_columns(rows[0])
        body = [r for r in rows[1:] if len(r) > cols['image']
                and r[cols['image']].strip()]
        if cols['label'] is not None:
            names.update(r[cols['label']].strip() for r in body
                         if len(r) > cols['label'] and r[cols['label']])
        parts = path_parts(osp.dirname(rel)) + [clean_stem(rel)]
        split = split_name(parts)
        split = osp.splitext(rel)[0] if split in splits else split
        refs = list(dict.fromkeys(r[cols['image']].strip() for r in body))
        splits[split] = dict(ann_file=rel, data_prefix=dict(
            img=image_prefix(index, rel, split, refs[:5])))
        num += len(body)
    if not splits:
        return None
    classes = tuple(sorted(names)) or ('object', )
    source = (f'the label column ({num} rows)' if names else
              'one class (no label column)')
    return Found('csv', splits, classes, source,
                 f'CSV box tables {[c["ann_file"] for c in splits.values()]}'
                 f' ({num} rows)')
