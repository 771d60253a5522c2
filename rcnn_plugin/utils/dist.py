"""Make mmengine's distributed launchers work on CPU-only machines."""
import gc
import logging
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

from .config_types import cfg_type_name


def prepare_distributed(cfg: Config) -> None:
    """Adapt ``cfg`` so that distributed training works on CPU and GPU.

    With any launcher, the default DDP wrapper becomes
    :class:`DeviceAwareDistributedDataParallel` (frozen stages are applied
    before DDP records its parameters). mmengine 0.10.7 also always calls
    ``torch.cuda.set_device`` before ``init_process_group``, which fails
    without a GPU: without CUDA, and for the ``pytorch`` launcher only, this
    initialises a gloo process group from torchrun's environment variables
    (the Runner then skips its own initialisation). Without a launcher,
    nothing changes.

    Args:
        cfg (Config): The full config, with ``cfg.launcher`` set.

    Raises:
        RuntimeError: For the ``slurm`` or ``mpi`` launchers without CUDA.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return
    wrapper = cfg.get('model_wrapper_cfg') or {}
    if not wrapper:
        # mmengine's default wrapping, which a model_wrapper_cfg replaces:
        # no buffer broadcast, and the top-level find_unused_parameters
        wrapper = dict(broadcast_buffers=False,
                       find_unused_parameters=cfg.get(
                           'find_unused_parameters', False))
    if cfg_type_name(wrapper, 'MMDistributedDataParallel') == \
            'MMDistributedDataParallel':
        # Runner.wrap_model looks the type up in mmengine's root registry,
        # which only finds children's modules through the scope prefix.
        wrapper['type'] = 'mmdet.DeviceAwareDistributedDataParallel'
        cfg.model_wrapper_cfg = wrapper
    if torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA; on CPU use torchrun with '
            '--launcher pytorch (tools/dist_train.sh does).')
    env_cfg = dict(cfg.get('env_cfg') or {})
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = env_cfg
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))


def close_distributed() -> None:
    """Destroy the process group, if any, after all ranks have finished.

    Left to interpreter shutdown, gloo's threads can be destroyed while
    still joinable: one rank aborts with "terminate called without an
    active exception" (SIGABRT) after training has finished and saved, and
    torchrun reports the whole run as failed. Call this on the success
    path only: after an error the barrier would wait for ranks that died.
    Without a process group, nothing happens.

    Drop the runner first (``del runner``): DDP's reducer holds the group
    and gloo work with tensors in it; freed at interpreter shutdown, they
    aborted a rank even after the group was destroyed (CI, again). This
    collects them while the interpreter is fully alive.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()  # the runner's cycles (hooks <-> runner) included
        alive = sum(isinstance(obj, DistributedDataParallel)
                    for obj in gc.get_objects())
        if alive:
            print_log(
                f'close_distributed: {alive} DistributedDataParallel '
                'model(s) still referenced; their gloo work is freed at '
                'interpreter exit, where it can abort the process. Drop '
                'the runner first (del runner).', 'current', logging.WARNING)
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        gc.collect()
