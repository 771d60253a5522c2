"""The demo's recipe must not diverge: its lr, batch and schedule shape on
smaller images, through a real Runner, with the loss falling.

The first demo recipe (lr 0.01 at batch 4, a 50-iteration warm-up) diverged
after the warm-up on a fresh clone (loss 1.9 -> 9, held-out mAP@0.5 0.03)
while 739 two-iteration tests passed. This test keeps the demo's model
(ImageNet MobileNetV2-FPN), optimizer, clipping, lr and batch, shrinks the
images to 160 px and the schedule to ``ITERS`` iterations with the warm-up
at the same fraction of training, and asserts the loss falls.
"""
import copy
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
ITERS = 48
IMG = 160


class _LossLog(Hook):
    """Keep every iteration's total loss and gradient norm."""

    def __init__(self):
        self.loss, self.grad_norm = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.loss.append(float(outputs['loss']))
        if 'train/grad_norm' in runner.message_hub.log_scalars:
            self.grad_norm.append(
                runner.message_hub.get_scalar('train/grad_norm').current())


def _scaled_schedule(cfg: Config, iters: int) -> list:
    """The config's schedule with its milestones scaled to ``iters``."""
    epoch_iters = 60  # the demo: 240 images at batch 4
    total = cfg.train_cfg.max_epochs * epoch_iters
    out = []
    for sched in copy.deepcopy(cfg.param_scheduler):
        factor = (iters / total if not sched.get('by_epoch', True) else
                  iters / cfg.train_cfg.max_epochs)
        for key in ('begin', 'end'):
            if key in sched:
                sched[key] = max(1, round(sched[key] * factor))
        if 'milestones' in sched:
            sched['milestones'] = [round(m * factor)
                                   for m in sched['milestones']]
        sched['by_epoch'] = False
        out.append(sched)
    return out


def run_recipe(cfg: Config, data_root: str, work_dir: str,
               iters: int = ITERS) -> _LossLog:
    """Train ``cfg``'s model, optimizer and schedule for ``iters`` steps on
    the small images."""
    cfg = copy.deepcopy(cfg)
    for split in ('train', 'val', 'test'):
        for step in cfg[f'{split}_dataloader'].dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (IMG, IMG)
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.param_scheduler = _scaled_schedule(cfg, iters)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters + 1)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1000)
    cfg.custom_hooks = []
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    log = _LossLog()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(log)
    runner.train()
    return log


@pytest.fixture(scope='module')
def small_cells(tmp_path_factory):
    from rcnn_plugin.datasets import make_synthetic_cells
    root = str(tmp_path_factory.mktemp('small_cells'))
    make_synthetic_cells(root, num_train=24, num_val=2, img_size=IMG,
                         seed=0)
    return root


def trains_stably(log: _LossLog) -> bool:
    """Every loss finite, the last eighth of training's mean loss under 0.8x
    the first eighth's, and no loss above 2x the first one.

    Measured (160 px, 48 iterations, seed 0): the demo recipe gives 0.53x
    and at most 1.07x the first loss; the first recipe (lr 0.01, warm-up 50
    of 240 iterations) 0.81x and 4.9x (12.3 after the warm-up, gradient
    norms up to 164 against the clip at 35).
    """
    k = max(1, len(log.loss) // 8)
    first = sum(log.loss[:k]) / k
    last = sum(log.loss[-k:]) / k
    return (all(math.isfinite(x) for x in log.loss) and last < 0.8 * first
            and max(log.loss) <= 2 * log.loss[0])


@pytest.mark.slow
def test_demo_recipe_trains_stably(small_cells, tmp_path):
    cfg = Config.fromfile(DEMO)
    log = run_recipe(cfg, small_cells, str(tmp_path))
    assert len(log.loss) == ITERS
    assert trains_stably(log), (
        f'the demo recipe does not train stably: loss {log.loss}')


@pytest.mark.slow
def test_first_demo_recipe_fails_the_check(small_cells, tmp_path):
    """The check catches a diverging recipe: the first demo recipe's
    schedule at twice its lr.

    At this size the first recipe itself (lr 0.01) is on the edge, and the
    CPU decides: 4.9x the first loss on the machine it was measured on,
    but on session 29's (AMD EPYC) it trained (last eighth 0.43x the
    first, never above it). At lr 0.02 that machine went to 778x the first
    loss (last eighth 20x, gradient norm 22521), so the test does not
    depend on which CPU runs it.
    """
    cfg = Config.fromfile(DEMO)
    cfg.optim_wrapper.optimizer.lr = 0.02
    cfg.param_scheduler[0]['end'] = 50
    log = run_recipe(cfg, small_cells, str(tmp_path))
    assert not trains_stably(log), f'loss {log.loss}'
