"""Keys for resumable benchmark drivers: a finished run is reused only if
it was made from the same config, options and input checkpoint.

A driver that skips every run whose output file exists silently reports
stale numbers after its config or its base checkpoint changed. These
helpers hash what a run is made from, keep the hash in a small JSON record
beside the output, and stop with a sentence naming the folder when a
finished output was made from something else.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from .fileio import atomic_open

__all__ = [
    'file_sha256', 'config_key', 'reuse_run', 'begin_run',
    'write_run_record', 'val_history'
]


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes, or ``'missing'`` if there is no such file.

    Args:
        path (str): The file.

    Returns:
        str: Hex digest, or ``'missing'``.
    """
    if not osp.isfile(path):
        return 'missing'
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def config_key(config: str, options: List[str], root: str = '') -> str:
    """Hash of what a training run is made from: the config resolved with
    its ``--cfg-options`` and the bytes of its ``load_from`` checkpoint
    (a ``load_from`` that is not a local file counts by its name only).

    Args:
        config (str): Config path (relative to ``root`` or absolute).
        options (list[str]): ``key=value`` items as given to
            ``tools/train.py --cfg-options``.
        root (str): Folder that relative paths (the config and
            ``load_from``) are relative to. Defaults to the current one.

    Returns:
        str: Hex digest.
    """
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(osp.join(root, config))
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o'] + options).o)
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    load_from = cfg.get('load_from')
    ckpt = file_sha256(osp.join(root, load_from)) if load_from else 'none'
    return hashlib.sha256((text + ckpt).encode()).hexdigest()


def reuse_run(work_dir: str, done: str, key: str,
              record: Optional[str] = None) -> bool:
    """Whether a finished output can be reused for a run keyed ``key``.

    Args:
        work_dir (str): The run's folder (named in messages).
        done (str): The file a finished run leaves.
        key (str): The key of the run about to be made.
        record (str, optional): The run's JSON record holding ``key``.
            Defaults to ``<work_dir>/run.json``.

    Returns:
        bool: False if ``done`` does not exist (the run must be made);
        True if it exists and was made with ``key``, or by a driver
        older than the records (this is printed).

    Raises:
        SystemExit: ``done`` exists but was made with another key.
    """
    if not osp.isfile(done):
        return False
    record = record or osp.join(work_dir, 'run.json')
    if not osp.isfile(record):
        print(f'# {work_dir}: done before (no {osp.basename(record)}: made '
              'by an older driver, what it was made from is not checked), '
              'reused')
        return True
    if json.load(open(record)).get('key') != key:
        raise SystemExit(
            f'{done} was made from another config, --cfg-options or input '
            f'checkpoint than this run (see {record}); move or delete it '
            f'to make it again, or use another --work-dir')
    print(f'# {work_dir}: done before, {done}')
    return True


def begin_run(work_dir: str, key: str, record: Optional[str] = None,
              **info) -> bool:
    """Record that a run keyed ``key`` begins in ``work_dir``, and say
    whether it resumes a cut run there.

    A cut run (a ``last_checkpoint`` in ``work_dir``) is resumed only if
    it was begun with the same key: resuming another config's checkpoints
    under this one would report a mixture of both.

    Args:
        work_dir (str): The run's folder (named in messages).
        key (str): The key of the run about to be made.
        record (str, optional): The JSON record of the begun run. Defaults
            to ``<work_dir>/run.json``.
        **info: Written into ``record`` with ``key``.

    Returns:
        bool: True to resume (a cut run begun with ``key``, or one begun by
        a driver older than the records, which is printed); False to start
        (no checkpoint yet).

    Raises:
        SystemExit: ``work_dir`` holds a cut run begun with another key.
    """
    record = record or osp.join(work_dir, 'run.json')
    cut = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    begun = json.load(open(record)).get('key') if osp.isfile(record) \
        else None
    if cut and begun is not None and begun != key:
        raise SystemExit(
            f'{work_dir} holds a run begun from another config, '
            f'--cfg-options or input checkpoint (see {record}); move or '
            'delete it to begin this one, or use another --work-dir')
    if cut and begun is None:
        print(f'# {work_dir}: a cut run without {osp.basename(record)} '
              '(begun by an older driver, what it was begun from is not '
              'checked), resumed')
    os.makedirs(work_dir, exist_ok=True)
    write_run_record(record, key, **info)
    return cut


def write_run_record(record: str, key: str, **info) -> None:
    """Write ``key`` (and ``info``, for whoever reads it) to ``record``.

    Args:
        record (str): JSON file to write.
        key (str): The run's key.
        **info: JSON-serialisable description of the run (config,
            options, command).
    """
    with atomic_open(record) as f:  # never a half-written record
        json.dump(dict(key=key, **info), f, indent=1)


def val_history(work_dir: str, metric: str,
                since: str = '') -> List[Dict]:
    """Every validation record of ``metric`` in a run's scalars files.

    A resumed run has one timestamped log folder per attempt; a later
    record of the same step replaces an earlier one, so an epoch validated
    again after a resume counts once, with its newer value.

    Args:
        work_dir (str): The run's work dir (``<stamp>/vis_data/scalars.json``
            under it).
        metric (str): The key a validation record has, e.g.
            ``'pascal_voc/mAP'``.
        since (str): Leave out the log folders named before this one (an
            earlier run's, kept in the same work dir). Defaults to all.

    Returns:
        list[dict]: The records, by step.
    """
    by_step: Dict[int, Dict] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        if osp.basename(osp.dirname(osp.dirname(path))) < since:
            continue
        with open(path) as f:
            for rec in (json.loads(line) for line in f if line.strip()):
                if metric in rec:
                    by_step[rec.get('step', len(by_step))] = rec
    return [by_step[k] for k in sorted(by_step)]
