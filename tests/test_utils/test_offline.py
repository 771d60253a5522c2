"""Offline-first: remote weights load from the cache or fail explicitly."""
import os
import os.path as osp
import socket

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import rcnn_plugin  # noqa: F401  (registers the offline loaders)
from rcnn_plugin.utils import prepare_offline, strip_remote_pretrained
from rcnn_plugin.utils.offline import cached_path, resolve_url


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Empty torch hub cache; any socket connection fails."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    monkeypatch.delenv('RCNN_PLUGIN_ALLOW_DOWNLOADS', raising=False)

    def refuse(*args, **kwargs):
        raise OSError('network access attempted in an offline test')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket.socket, 'connect_ex', refuse)
    return tmp_path


@pytest.mark.parametrize('name', [
    'torchvision://resnet50', 'open-mmlab://resnext101_32x4d',
    'mmcls://resnet50',
    'https://download.openmmlab.com/x/model-1234abcd.pth'])
def test_remote_name_not_cached_is_an_explicit_error(no_network, name):
    url = resolve_url(name)
    with pytest.raises(FileNotFoundError) as err:
        _load_checkpoint(name)
    message = str(err.value)
    assert cached_path(url) in message
    assert str(no_network / 'torch') in message
    assert 'load_state_dict_from_url' in message and url in message


def test_remote_name_in_cache_loads_without_network(no_network):
    url = resolve_url('torchvision://resnet18')
    path = cached_path(url)
    os.makedirs(osp.dirname(path))
    torch.save({'conv1.weight': torch.ones(2)}, path)
    ckpt = _load_checkpoint('torchvision://resnet18')
    assert torch.equal(ckpt['conv1.weight'], torch.ones(2))
    assert CheckpointLoader._get_checkpoint_loader(
        'https://x/y.pth').__name__ == 'load_remote_offline'


def test_strip_remote_pretrained_keeps_local_ones():
    model = dict(
        backbone=dict(init_cfg=dict(type='Pretrained',
                                    checkpoint='torchvision://resnet50')),
        neck=dict(init_cfg=[
            dict(type='Xavier', layer='Conv2d'),
            dict(type='Pretrained', checkpoint='https://a/b.pth')]),
        roi_head=[dict(init_cfg=dict(type='Pretrained',
                                     checkpoint='/local/file.pth'))])
    removed = strip_remote_pretrained(model)
    assert removed == [
        'model.backbone.init_cfg: torchvision://resnet50',
        'model.neck.init_cfg: https://a/b.pth']
    assert model['backbone']['init_cfg'] is None
    assert model['neck']['init_cfg'] == [dict(type='Xavier', layer='Conv2d')]
    assert model['roi_head'][0]['init_cfg']['checkpoint'] == '/local/file.pth'
    assert prepare_offline(Config(dict(model=model, load_from=None))) == []


def test_resume_without_a_checkpoint_keeps_the_pretrained_init(tmp_path):
    # resume=True with nothing in the work dir trains from the start
    # (mmengine): stripping the ImageNet init left a random backbone.
    def cfg():
        return Config(dict(work_dir=str(tmp_path), resume=True, model=dict(
            backbone=dict(init_cfg=dict(
                type='Pretrained', checkpoint='torchvision://resnet50')))))
    assert prepare_offline(cfg()) == []
    (tmp_path / 'epoch_1.pth').touch()
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    assert prepare_offline(cfg()) == [
        'model.backbone.init_cfg: torchvision://resnet50']


@pytest.mark.slow
def test_train_with_load_from_never_touches_the_network(
        no_network, tiny_config, tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner
    register_all_modules()
    cfg = Config.fromfile(tiny_config)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint='torchvision://mobilenet_v2')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.val_interval = 10  # no validation: training is the point
    # Without load_from the remote init is an explicit error, no download.
    with pytest.raises(FileNotFoundError, match='never downloads'):
        MODELS.build(cfg.model).init_weights()
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'start.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    cfg.load_from = ckpt
    assert prepare_offline(cfg) == [
        'model.backbone.init_cfg: torchvision://mobilenet_v2']
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))
