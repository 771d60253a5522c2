"""The config a study's trials start from, and the metric they are
scored on (its direction from ``--direction``, else the config's
``save_best`` rule, else the metric's name)."""
import os.path as osp
from typing import Tuple

from mmengine.config import Config

from ...utils.cli import merge_cfg_options
from .trials import StudyError, by_epoch


def load_base(opts) -> Config:
    """The config every trial starts from (``--cfg-options`` applied)."""
    if not osp.isfile(opts.config):
        raise StudyError(f'no config file {opts.config}')
    cfg = Config.fromfile(opts.config)
    merge_cfg_options(cfg, opts.cfg_options)
    # val_cfg=dict() is mmengine's default ValLoop, not "no validation".
    missing = [key for key in ('val_dataloader', 'val_cfg', 'val_evaluator')
               if cfg.get(key) is None]
    if missing:
        raise StudyError(f'{opts.config} has no {" / ".join(missing)}: '
                         'a trial is scored on its validations')
    if opts.epochs is not None and not by_epoch(cfg):
        raise StudyError('--epochs needs an epoch-based train_cfg; '
                         f'{opts.config} has {cfg.train_cfg.get("type")}')
    last = opts.epochs or cfg.train_cfg.get('max_epochs') or cfg.train_cfg.get(
        'max_iters')
    if cfg.train_cfg.get('val_begin', 1) > (last or 0):
        raise StudyError(
            f'{opts.config} validates from train_cfg.val_begin '
            f'{cfg.train_cfg.val_begin}, after the last '
            f'{"epoch" if by_epoch(cfg) else "iteration"} of a trial '
            f'({last}): no trial would ever be scored; lower it with '
            '--cfg-options train_cfg.val_begin=1')
    if by_epoch(cfg):
        opts.val_interval = opts.val_interval or 1
    elif opts.val_interval is None:
        iters = cfg.train_cfg.get('max_iters')
        raise StudyError(
            f'{opts.config} trains by iterations (max_iters {iters}): give '
            '--val-interval in iterations (the pruner sees each validation; '
            f'for example {max(1, (iters or 4) // 4)}), since validating '
            'every iteration would be the default')
    return cfg


def _save_best_rules(cfg: Config) -> Tuple[list, list]:
    """The checkpoint hook's ``save_best`` keys and their ``rule`` each."""
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    best, rule = ckpt.get('save_best'), ckpt.get('rule')
    best = list(best) if isinstance(best, (list, tuple)) else [best]
    rules = (list(rule) if isinstance(rule, (list, tuple)) else
             [rule] * len(best))
    if len(rules) == 1:  # mmengine's CheckpointHook: one rule for all
        rules *= len(best)
    return best, rules + [None] * (len(best) - len(rules))


def pick_metric(cfg: Config, opts) -> tuple:
    """The metric and direction: the flags, else the config's save_best
    (and its ``rule``)."""
    keys, rules = _save_best_rules(cfg)
    metric = opts.metric
    if metric is None:
        best = keys[0] if keys else None
        if not isinstance(best, str) or best == 'auto':
            raise StudyError(
                'say which validation metric to optimise with --metric '
                "(e.g. --metric pascal_voc/mAP); the config's "
                f'default_hooks.checkpoint.save_best is {best!r}')
        metric = best
    rule = dict(zip(keys, rules)).get(metric)
    implied = {'less': 'minimize', 'greater': 'maximize'}.get(rule)
    if opts.direction and implied and opts.direction != implied:
        raise StudyError(
            f'--direction {opts.direction} contradicts the config\'s '
            f"save_best rule {rule!r} for {metric} (the checkpoint kept "
            'would be the other end): drop --direction or change the rule')
    direction = opts.direction or implied or (
        'minimize' if 'loss' in metric.split('/')[-1] else 'maximize')
    if direction not in ('maximize', 'minimize'):
        raise StudyError(f"--direction must be 'maximize' or 'minimize', "
                         f'got {direction!r}')
    return metric, direction
