"""Train from the config ``tools/finetune.py`` wrote, then test the best
checkpoint, and say what the test measured."""
import argparse
import glob
import json
import os
import os.path as osp
import time
from typing import List, Optional

from mmengine.config import Config

from ...utils.run_record import val_history

__all__ = ['FROM_CHECKPOINT', 'VAL_AS_TEST', 'clear_earlier_run', 'train']

# The re-targeted --from weights the written config's load_from names.
FROM_CHECKPOINT = 'from_checkpoint.pth'

# What the final test measures when the data has no test split.
VAL_AS_TEST = ('the data has no test split: this is the validation split, '
               'on which the checkpoint was chosen, so it is optimistic')


def train(cfg: Config, args: argparse.Namespace) -> dict:
    """Train from the written config, then test the best checkpoint.

    Args:
        cfg (Config): The written config, loaded.
        args (argparse.Namespace): The options.

    Returns:
        dict: ``val`` and ``test`` metrics, the seed, lr and batch size,
        and the wall time.
    """
    from mmengine.runner import Runner
    cfg.work_dir = args.work_dir
    cfg.resume = bool(args.resume) and osp.isfile(
        osp.join(args.work_dir, 'last_checkpoint'))
    if cfg.resume:  # resume from the work dir, not from --from's weights
        cfg.load_from = None
    elif args.resume:  # mmengine would start without --from's weights
        print(f'[train] --resume: nothing to resume in {args.work_dir} '
              "(no last_checkpoint); training from --from's weights",
              flush=True)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    # the log folder of this run's first attempt: the validations of its
    # resumed attempts follow, those of an --overwrite'n run precede it
    marker = osp.join(args.work_dir, 'finetune_first_log')
    if not cfg.resume or not osp.isfile(marker):
        with open(marker, 'w') as f:
            f.write(osp.basename(runner.log_dir))
    with open(marker) as f:
        first_log = f.read().strip()
    print(f'[train] seed {runner.seed} (--seed)', flush=True)
    runner.train()
    planned = runner.train_loop.max_epochs
    out = dict(seed=runner.seed, lr=cfg.optim_wrapper.optimizer.lr,
               batch_size=cfg.train_dataloader.batch_size,
               train_s=round(time.time() - start, 1),  # of this attempt
               resumed=bool(cfg.resume),
               epochs=dict(run=runner.epoch, planned=planned,
                           stopped_early=runner.epoch < planned),
               val=val_history(args.work_dir, 'pascal_voc/mAP',
                                 since=first_log))
    if out['epochs']['stopped_early']:
        print(f'[finetune] stopped early after epoch {runner.epoch} of '
              f'{planned}: the validation mAP did not improve for the '
              "early-stopping hook's patience", flush=True)
    best = _best_checkpoint(args.work_dir)
    if best:
        runner.load_checkpoint(best)
        out['best_checkpoint'] = osp.basename(best)
        runner.message_hub.update_info('test_checkpoint',
                                       osp.basename(best))
    out['test_split'] = 'test'
    if cfg.test_dataloader.dataset == cfg.val_dataloader.dataset:
        out['test_split'] = 'val'
        runner.message_hub.update_info('test_note', VAL_AS_TEST)
    out['test'] = runner.test()
    with open(osp.join(args.work_dir, 'finetune.json'), 'w') as f:
        json.dump(out, f, indent=2, default=float)
    return out


def _best_checkpoint(work_dir: str) -> Optional[str]:
    found = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')),
                   key=osp.getmtime)
    return found[-1] if found else None


def clear_earlier_run(work_dir: str) -> List[str]:
    """Remove an earlier run's checkpoints and result from ``work_dir``
    (``--overwrite``), saying which.

    Left in place, an earlier ``best_*.pth`` of another epoch, or an
    ``epoch_8.pth`` a shorter new run never reaches, would sit beside the
    new run's files as if it were one of them. The timestamped log folders
    stay: each run has its own.

    Returns:
        list[str]: The names removed, sorted.
    """
    # from_checkpoint.pth is this run's start (--from), written just before.
    names = [osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))
             if osp.basename(p) != FROM_CHECKPOINT]
    names += [n for n in ('last_checkpoint', 'finetune.json')
              if osp.isfile(osp.join(work_dir, n))]
    for name in names:
        os.remove(osp.join(work_dir, name))
    if names:
        print(f'[finetune] --overwrite: removed the earlier run\'s '
              f'{", ".join(sorted(names))} from {work_dir}', flush=True)
    return sorted(names)
