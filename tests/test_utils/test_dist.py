import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from rcnn_plugin.utils import close_distributed, prepare_distributed


def _cfg(launcher, **kwargs):
    return Config(dict(launcher=launcher, **kwargs))


def test_no_launcher_changes_nothing():
    cfg = _cfg('none')
    prepare_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg and 'env_cfg' not in cfg


def test_custom_wrapper_is_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _cfg('pytorch', model_wrapper_cfg=dict(type='MyWrapper'))
    prepare_distributed(cfg)
    assert cfg.model_wrapper_cfg.type == 'MyWrapper'


def test_gpu_uses_device_aware_wrapper_and_leaves_backend(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _cfg('pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl')))
    prepare_distributed(cfg)
    assert cfg.model_wrapper_cfg.type == \
        'mmdet.DeviceAwareDistributedDataParallel'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert not dist.is_initialized()


@pytest.mark.parametrize('unused', [True, False])
def test_default_wrapper_keeps_mmengines_ddp_arguments(monkeypatch, unused):
    # The replaced default dropped the top-level find_unused_parameters
    # (mmdet's convention) and left DDP broadcasting buffers every step.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _cfg('pytorch', find_unused_parameters=unused)
    prepare_distributed(cfg)
    assert cfg.model_wrapper_cfg.find_unused_parameters is unused
    assert cfg.model_wrapper_cfg.broadcast_buffers is False


def test_cpu_pytorch_launcher_initialises_gloo(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        monkeypatch.setenv('MASTER_PORT', str(s.getsockname()[1]))
    cfg = _cfg('pytorch')
    try:
        prepare_distributed(cfg)
        assert dist.is_initialized()
        assert dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        # The tools tear the group down themselves (a gloo group left to
        # interpreter shutdown aborted one rank in CI).
        close_distributed()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_cpu_other_launchers_are_refused(monkeypatch, launcher):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match='--launcher pytorch'):
        prepare_distributed(_cfg(launcher))


def test_close_without_process_group_does_nothing():
    assert not dist.is_initialized()
    close_distributed()
    assert not dist.is_initialized()
