"""Write a step's box-replay memory next to its checkpoint (ABR)."""
import os.path as osp
from typing import Optional

from mmdet.registry import HOOKS
from mmdet.utils import get_test_pipeline_cfg
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from .prototypes import prototype_selector
from .replay_memory import (
    ReplayMemory,
    build_replay_memory,
    load_replay_memory,
)


def _classes_of(dataset) -> tuple:
    classes = dataset.metainfo.get('classes')
    if not classes:
        raise ValueError('ReplayMemoryHook needs the training dataset\'s '
                         "metainfo['classes']")
    return tuple(classes)


@HOOKS.register_module()
class ReplayMemoryHook(Hook):
    """At the end of training, write the memory the next step replays.

    The new memory (a ``replay_memory/`` folder beside the checkpoints,
    i.e. in ``CheckpointHook``'s ``out_dir``, by default the work dir)
    holds the classes of the training data, ``old_classes + new_classes``
    for a :class:`NewClassDataset`: the crops of the previous memory
    (``memory``) for the old classes, and crops cut from this step's
    training data for the new ones, at most ``budget`` per class (see
    :mod:`.replay_memory` for the seeded selection). The previous memory
    is loaded and checked before training, as is the output folder (not
    the previous memory's), so a wrong one stops the run at once.

    Args:
        memory (str, optional): The previous step's memory, whose classes
            must be the first classes of the training data. None: cut
            every class from the training data (a first step). Defaults to
            None.
        budget (int): Most crops per class. Defaults to 50.
        margin (float): Context on each side of a box, a fraction of its
            width / height. Defaults to 0.1.
        seed (int): Seed of the selection. Defaults to 0.
        min_size (float): Skip boxes with a side below this (pixels).
            Defaults to 0.
        out_name (str): Folder name beside the checkpoints. Defaults to
            'replay_memory'.
        select (str): ``'random'`` (seeded uniform) or ``'mean'`` (ABR's
            prototype boxes under the trained model, with the config's
            test pipeline; see :mod:`.prototypes`) for the new classes.
            Defaults to 'random'.
    """

    priority = 'LOWEST'  # after CheckpointHook has set its out_dir

    def __init__(self, memory: Optional[str] = None, budget: int = 50,
                 margin: float = 0.1, seed: int = 0, min_size: float = 0,
                 out_name: str = 'replay_memory',
                 select: str = 'random') -> None:
        if budget < 1:
            raise ValueError(f'ReplayMemoryHook budget must be >= 1, got '
                             f'{budget}')
        if margin < 0:
            raise ValueError(f'ReplayMemoryHook margin must be >= 0, got '
                             f'{margin}')
        if select not in ('random', 'mean'):
            raise ValueError("ReplayMemoryHook select must be 'random' or "
                             f"'mean', got {select!r}")
        if not out_name or osp.basename(out_name) != out_name:
            raise ValueError(f'out_name is a folder name, got {out_name!r}')
        self.memory_path = memory
        self.budget, self.margin, self.seed = budget, margin, seed
        self.min_size, self.out_name = min_size, out_name
        self.select = select
        self.memory: Optional[ReplayMemory] = None
        self.out_dir: Optional[str] = None

    def before_train(self, runner) -> None:
        """Load the previous memory and check it against the data's classes.

        Args:
            runner (Runner): The training runner.
        """
        self.out_dir = self._out_dir(runner)
        if self.memory_path is None:
            return
        classes = _classes_of(runner.train_dataloader.dataset)
        memory = load_replay_memory(self.memory_path)
        if classes[:len(memory.classes)] != memory.classes:
            raise ValueError(
                f'replay memory {memory.index_file} was written for the '
                f'classes {list(memory.classes)}, but the training data\'s '
                f'classes are {list(classes)}; the old classes must come '
                'first, in the same order')
        if osp.abspath(self.out_dir) == osp.abspath(memory.root):
            raise ValueError(
                f'ReplayMemoryHook would write the new memory to '
                f'{self.out_dir}, the old memory itself ({self.memory_path})'
                f'; give the hook another out_name or the step another '
                'work dir')
        self.memory = memory

    def _out_dir(self, runner) -> str:
        """``out_name`` in the CheckpointHook's folder, else the work dir
        (read once that hook's ``before_train`` has set its folder)."""
        ckpt_dirs = [h.out_dir for h in getattr(runner, 'hooks', [])
                     if isinstance(h, CheckpointHook)
                     and isinstance(getattr(h, 'out_dir', None), str)]
        root = ckpt_dirs[0] if ckpt_dirs else runner.work_dir
        return osp.join(root, self.out_name)

    def after_train(self, runner) -> None:
        """Write the memory beside the checkpoints (main process only).

        Args:
            runner (Runner): The training runner.
        """
        if not is_main_process():
            return
        if self.out_dir is None:  # before_train did not run
            self.out_dir = self._out_dir(runner)
        select = None
        if self.select == 'mean':
            select = prototype_selector(
                runner.model, get_test_pipeline_cfg(runner.cfg))
        memory = build_replay_memory(
            runner.train_dataloader.dataset, self.out_dir, self.budget,
            self.margin, self.seed, self.min_size, old_memory=self.memory,
            select=select)
        print_log(f'ReplayMemoryHook: the next step replays '
                  f'{memory.index_file} (classes {list(memory.classes)})',
                  logger='current')
