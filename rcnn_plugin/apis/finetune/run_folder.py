"""What a run folder of ``tools/finetune.py`` holds before a run starts:
an earlier run to keep, overwrite or resume, and the inputs a resumed run
must keep (its split lists and written config)."""
import argparse
import glob
import os
import os.path as osp
from typing import Dict, Optional

from .prepare import FinetuneError

__all__ = ['earlier_run_error', 'run_inputs', 'check_resumed_inputs']


def _has_cuda() -> bool:
    return __import__('torch').cuda.is_available()


def earlier_run_error(args: argparse.Namespace) -> Optional[str]:
    """The sentence refusing the options, or a work dir that holds an
    earlier run unless ``--resume`` or ``--overwrite`` says what to do with
    it; else None."""
    if args.resume and args.overwrite:
        return '--resume and --overwrite exclude each other'
    if args.device == 'cuda' and not _has_cuda():  # it trained on the CPU
        return ('--device cuda: this machine has no CUDA device; use '
                '--device cpu (or auto)')
    found = [f for f in ('finetune.json', 'last_checkpoint')
             if osp.isfile(osp.join(args.work_dir, f))]
    if not found or args.resume or args.overwrite:
        return None
    return (f'{args.work_dir} holds an earlier run ({", ".join(found)}): '
            'add --resume to continue it, --overwrite to train again over '
            'it (its checkpoints and results are replaced), or choose '
            'another --work-dir')


def run_inputs(work_dir: str) -> Dict[str, str]:
    """The split lists and written configs of the run in ``work_dir``.

    Args:
        work_dir (str): The run folder.

    Returns:
        dict[str, str]: Path (relative to ``work_dir``) to the file's text;
        empty when there is no checkpoint to resume.
    """
    if not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return {}
    paths = glob.glob(osp.join(work_dir, 'splits', '*.txt')) + glob.glob(
        osp.join(work_dir, '*_finetune_*.py'))
    out = {}
    for path in sorted(paths):
        with open(path) as f:
            out[osp.relpath(path, work_dir)] = f.read()
    return out


def _body(text: Optional[str]) -> Optional[str]:
    # the header comments name the date and the command line
    return None if text is None else '\n'.join(
        line for line in text.splitlines() if not line.startswith('#'))


def check_resumed_inputs(work_dir: str, before: Dict[str, str]) -> None:
    """Refuse to resume a run on another split or config.

    ``tools/finetune.py --resume`` detects, splits and writes the config
    again; another ``--seed``, ``--epochs``, option or a changed data
    folder then gave another split (validation images trained on) and
    schedule than the checkpoint's. The files of the run being resumed are
    put back.

    Args:
        work_dir (str): The run folder.
        before (dict[str, str]): :func:`run_inputs` before the new ones were
            written.

    Raises:
        FinetuneError: Naming the files that differ.
    """
    if not before:
        return
    after = run_inputs(work_dir)
    changed = sorted(k for k in set(before) | set(after)
                     if _body(before.get(k)) != _body(after.get(k)))
    if not changed:
        return
    for name in set(after) - set(before):
        os.remove(osp.join(work_dir, name))
    for name, text in before.items():
        with open(osp.join(work_dir, name), 'w') as f:
            f.write(text)
    raise FinetuneError(
        f'--resume: the run in {work_dir} was started on other inputs '
        f'({", ".join(changed)} differ: another --seed, --epochs or option, '
        'or the data folder changed); give the options it was started '
        'with, or --overwrite to train again')
