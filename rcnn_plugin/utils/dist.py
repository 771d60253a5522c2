"""Make mmengine's distributed launchers work on CPU-only machines."""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def prepare_distributed(cfg: Config) -> None:
    """Adapt ``cfg`` so that ``torchrun`` training also runs on CPU.

    mmengine 0.10.7 always calls ``torch.cuda.set_device`` before
    ``init_process_group`` and gives DDP ``device_ids``, both of which fail
    without a GPU. Without CUDA, and for the ``pytorch`` launcher only, this
    initialises a gloo process group from torchrun's environment variables
    (the Runner then skips its own initialisation) and selects the
    :class:`DeviceAwareDistributedDataParallel` wrapper. With CUDA, or
    without a launcher, nothing changes.

    Args:
        cfg (Config): The full config, with ``cfg.launcher`` set.

    Raises:
        RuntimeError: For the ``slurm`` or ``mpi`` launchers without CUDA.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA; on CPU use torchrun with '
            '--launcher pytorch (tools/dist_train.sh does).')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or {}
    if wrapper.get('type', 'MMDistributedDataParallel') == \
            'MMDistributedDataParallel':
        wrapper['type'] = 'DeviceAwareDistributedDataParallel'
        cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
