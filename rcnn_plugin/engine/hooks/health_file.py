"""``health.json``: TrainingHealthHook's findings, written and resumed."""
import json
import os
import os.path as osp
from typing import List, Optional, Tuple, Union

from rcnn_plugin.utils.fileio import atomic_open

__all__ = ['read_findings', 'read_health', 'save_live_weights',
           'save_replay', 'write_health']


def write_health(path: str, findings: List[dict], skipped: int,
                 learned_at: Optional[int] = None) -> None:
    """Write ``health.json``: a status, the skipped steps, the findings.

    Args:
        path (str): The JSON file.
        findings (list[dict]): The findings so far.
        skipped (int): Non-finite steps skipped so far.
        learned_at (int, optional): The iteration at which the box
            classifier first clearly beat all-background. Defaults to None.
    """
    status = 'healthy'
    if findings:
        stopped = any(f['action'] == 'stop' for f in findings)
        status = 'stopped' if stopped else 'warned'
    with atomic_open(path) as f:  # a kill mid-write keeps the earlier
        json.dump(dict(status=status, skipped_steps=skipped,
                       classifier_learned_at=learned_at,
                       findings=findings), f, indent=2, default=str)


def read_findings(work_dir: str) -> List[dict]:
    """The findings in ``<work_dir>/health.json`` (empty when none).

    Args:
        work_dir (str): A run's work dir.

    Returns:
        list[dict]: The findings, oldest first.
    """
    path = osp.join(work_dir, 'health.json')
    if not osp.isfile(path):
        return []
    return _load(path).get('findings') or []


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as err:
        raise ValueError(
            f'{path} is not valid JSON ({err}); it is the training-health '
            'record of this work dir: move it aside to resume without its '
            'earlier findings') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path} holds a {type(data).__name__}, not the '
                         'training-health record (a mapping)')
    return data


def read_health(runner) -> Tuple[List[dict], int]:
    """The findings a resumed training keeps from ``health.json``.

    Args:
        runner (Runner): The runner, after ``load_or_resume``: findings up
            to ``runner.iter`` in ``<work_dir>/health.json`` are kept (later
            ones belong to an attempt the resume replaces); a training
            from iteration 0 keeps none.

    Returns:
        tuple[list[dict], int, int | None]: The findings, the non-finite
        steps skipped among them, and the iteration at which the classifier
        learned (``classifier_learned_at``) if it is kept.
    """
    if not runner.iter:
        return [], 0, None
    findings = read_findings(runner.work_dir)
    kept = [f for f in findings if f.get('iteration', 0) <= runner.iter]
    skipped = sum(f.get('kind') == 'nonfinite' and f.get('action') == 'skip'
                  for f in kept)
    path = osp.join(runner.work_dir, 'health.json')
    learned = None
    if osp.isfile(path):
        learned = _load(path).get('classifier_learned_at')
    if learned is not None and learned > runner.iter:
        learned = None  # learned in an attempt the resume replaces
    return kept, skipped, learned


def save_live_weights(runner, path: str, it: int) -> None:
    """Save the model's weights as they are now (main process only).

    Not ``runner.save_checkpoint``: that calls every hook's
    ``before_save_checkpoint``, so ``EMAHook`` swapped the averaged weights
    into the file (not those that gave the non-finite values) and an
    adapter hook wrote a finished epoch's adapter file mid-epoch.

    Args:
        runner (Runner): The runner.
        path (str): The ``.pth`` file.
        it (int): The iteration, written into ``meta``.
    """
    from mmengine.dist import is_main_process
    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    if not is_main_process():
        return
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    save_checkpoint(dict(meta=dict(epoch=runner.epoch, iter=it),
                         state_dict=weights_to_cpu(model.state_dict())), path)


def save_replay(base: str, data_batch: Optional[Union[dict, tuple, list]]
                ) -> Tuple[Optional[str], str]:
    """Save a batch that gave non-finite values, to replay it.

    Args:
        base (str): The path without ``.pth`` (``_rank<r>`` is added on
            ranks other than 0).
        data_batch (dict | tuple | list, optional): The batch; None saves
            nothing.

    Returns:
        tuple[str | None, str]: The file (None if nothing was saved) and a
        line for the message on how to replay it.
    """
    import torch
    from mmengine.dist import get_rank
    if data_batch is None:
        return None, ''
    rank = get_rank()
    replay = f'{base}{f"_rank{rank}" if rank else ""}.pth'
    os.makedirs(osp.dirname(replay), exist_ok=True)
    torch.save(data_batch, replay)
    return replay, (f'\nReplay the batch: batch = torch.load({replay!r}, '
                    'weights_only=False); data = model.data_preprocessor('
                    "batch, True); losses = model(**data, mode='loss')")
