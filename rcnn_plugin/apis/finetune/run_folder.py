"""What a run folder of ``tools/finetune.py`` holds before a run starts:
an earlier run to keep, overwrite or resume, and the inputs a resumed run
must keep (its split lists and written config)."""
import argparse
import glob
import os
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from .prepare import FinetuneError

__all__ = [
    'earlier_run_error', 'run_inputs', 'check_resumed_inputs', 'resume_guard'
]


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


def _restore(work_dir: str, before: Dict[str, str],
             after: Dict[str, str]) -> None:
    for name in set(after) - set(before):
        os.remove(osp.join(work_dir, name))
    for name, text in before.items():
        with open(osp.join(work_dir, name), 'w') as f:
            f.write(text)


def check_resumed_inputs(work_dir: str, before: Dict[str, str]) -> None:
    """Refuse to resume a run on another split; say when its config
    changed.

    ``tools/finetune.py --resume`` detects, splits and writes the config
    again; another ``--seed`` or a changed data folder then drew another
    split than the checkpoint's (validation images trained on). The run's
    files are put back and it stops. A config that differs only (another
    option, or a plugin update that writes it differently) is resumed with
    the new one, and the files that differ are named.

    Args:
        work_dir (str): The run folder.
        before (dict[str, str]): :func:`run_inputs` before the new ones were
            written.

    Raises:
        FinetuneError: Naming the split lists that differ.
    """
    if not before:
        return
    after = run_inputs(work_dir)
    changed = sorted(k for k in set(before) | set(after)
                     if _body(before.get(k)) != _body(after.get(k)))
    splits = [k for k in changed if k.startswith('splits')]
    if splits:
        _restore(work_dir, before, after)
        raise FinetuneError(
            f'--resume: the run in {work_dir} was started on another split '
            f'({", ".join(changed)} differ: another --seed, or the data '
            'folder changed); give the options it was started with, or '
            '--overwrite to train again')
    if changed:
        print(f'[finetune] --resume: {", ".join(changed)} differ from the '
              "run's (another option, or a plugin update): resuming with "
              'the new config', flush=True)


@contextmanager
def resume_guard(work_dir: str, resume: bool) -> Iterator[None]:
    """Around the steps that write the split lists and the config: with
    ``resume``, :func:`check_resumed_inputs` after them, and the run's
    files put back if they fail.

    Args:
        work_dir (str): The run folder.
        resume (bool): Whether the run is resumed.
    """
    before = run_inputs(work_dir) if resume else {}
    try:
        yield
    except BaseException:
        if before:
            _restore(work_dir, before, run_inputs(work_dir))
        raise
    check_resumed_inputs(work_dir, before)
