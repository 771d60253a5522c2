"""AdapterCheckpointHook in a real (tiny) training run."""
import os.path as osp

import pytest
import torch
from mmdet.registry import HOOKS, MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from rcnn_plugin.engine import AdapterCheckpointHook, load_checkpoint_safely
from rcnn_plugin.models.peft import load_adapter

PEFT_TINY = """
_base_ = '{base}'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
model = dict(
    type='PEFTDetector',
    detector_type='FasterRCNN',
    lora=dict(rank=4, alpha=8,
              target_modules=r'backbone\\.layer[67]\\..*|neck\\.fpn_convs.*'
              r'|roi_head\\.bbox_head\\.shared_fcs\\.\\d+'),
    freeze=dict(frozen='.*', trainable=['rpn_head', 'bbox_head.fc_cls',
                                        'bbox_head.fc_reg']))
custom_hooks = [dict(type='AdapterCheckpointHook', save_base=True)]
"""


@pytest.fixture
def peft_tiny_config(tmp_path, tiny_config):
    path = tmp_path / 'tiny_peft_faster-rcnn.py'
    path.write_text(PEFT_TINY.format(base=tiny_config))
    return str(path)


def test_registered():
    assert HOOKS.get('AdapterCheckpointHook') is AdapterCheckpointHook


def test_empty_prefix_is_refused():
    with pytest.raises(ValueError, match='prefix'):
        AdapterCheckpointHook(prefix='')


def test_best_adapters_are_named_and_removed_adapters_follow(tmp_path,
                                                           monkeypatch):
    # The best checkpoint's adapter was written as adapter_epoch_N.pth, and
    # the adapters of checkpoints that max_keep_ckpts removed stayed.
    from types import SimpleNamespace

    from mmengine.hooks import CheckpointHook
    from mmengine.logging import MessageHub, MMLogger

    from rcnn_plugin.engine.hooks import adapter_checkpoint_hook as module
    monkeypatch.setattr(module, 'save_adapter', lambda model, path, *_:
                        open(path, 'w').close() or 1)
    ckpt = CheckpointHook(max_keep_ckpts=1, save_best='auto')
    ckpt.out_dir = str(tmp_path)
    hub = MessageHub(f'adapter_best_{tmp_path}')
    runner = SimpleNamespace(
        hooks=[ckpt], message_hub=hub, work_dir=str(tmp_path), model=None,
        cfg=dict(load_from=None), logger=MMLogger.get_current_instance())
    hook = AdapterCheckpointHook()
    hook.before_train(runner)
    # an adapter kept on purpose (its 41 MiB checkpoint deleted) by an
    # earlier run: never touched
    (tmp_path / 'adapter_epoch_9.pth').touch()

    def save(epoch, best=False):
        if best:
            hub.update_info('best_ckpt', str(
                tmp_path / f'best_coco_bbox_mAP_epoch_{epoch}.pth'))
        hook.before_save_checkpoint(runner, dict(meta=dict(epoch=epoch)))

    def files():
        return sorted(p.name for p in tmp_path.iterdir()
                      if p.name.startswith('adapter_'))

    (tmp_path / 'epoch_1.pth').touch()
    save(1)
    save(1, best=True)
    save(1)  # mmengine saves the epoch again after a best
    assert files() == ['adapter_best_coco_bbox_mAP_epoch_1.pth',
                       'adapter_epoch_1.pth', 'adapter_epoch_9.pth']
    (tmp_path / 'epoch_1.pth').unlink()  # max_keep_ckpts=1
    (tmp_path / 'epoch_2.pth').touch()
    save(2)
    save(2, best=True)
    assert files() == ['adapter_best_coco_bbox_mAP_epoch_2.pth',
                       'adapter_epoch_2.pth', 'adapter_epoch_9.pth']
    (tmp_path / 'epoch_2.pth').unlink()
    hook.after_train(runner)
    assert files() == ['adapter_best_coco_bbox_mAP_epoch_2.pth',
                       'adapter_epoch_9.pth']


def test_a_resumed_run_removes_the_adapters_of_its_earlier_checkpoints(
        tmp_path, monkeypatch):
    # A new process started with nothing written: after a resume the
    # adapter of a checkpoint max_keep_ckpts removed stayed for good.
    from types import SimpleNamespace

    from mmengine.hooks import CheckpointHook
    from mmengine.logging import MessageHub, MMLogger

    from rcnn_plugin.engine.hooks import adapter_checkpoint_hook as module
    monkeypatch.setattr(module, 'save_adapter', lambda model, path, *_:
                        open(path, 'w').close() or 1)
    ckpt = CheckpointHook(max_keep_ckpts=1)
    ckpt.out_dir = str(tmp_path)
    hub = MessageHub(f'adapter_resume_{tmp_path}')
    hub.update_info('keep_ckpt_ids', [4])  # restored by the resume
    runner = SimpleNamespace(
        hooks=[ckpt], message_hub=hub, work_dir=str(tmp_path), model=None,
        cfg=dict(load_from=None), logger=MMLogger.get_current_instance())
    for name in ('adapter_epoch_4.pth', 'adapter_epoch_9.pth'):
        (tmp_path / name).touch()  # epoch 9's: another run's, kept
    hook = AdapterCheckpointHook()
    hook.before_train(runner)
    (tmp_path / 'epoch_5.pth').touch()  # epoch_4.pth removed by mmengine
    hook.before_save_checkpoint(runner, dict(meta=dict(epoch=5)))
    assert sorted(p.name for p in tmp_path.iterdir()
                  if p.name.startswith('adapter_')) == [
        'adapter_epoch_5.pth', 'adapter_epoch_9.pth']


@pytest.mark.slow
def test_adapter_plus_base_reproduces_the_checkpoint(peft_tiny_config,
                                                     tmp_path):
    cfg = Config.fromfile(peft_tiny_config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # CPU time
    Runner.from_cfg(cfg).train()
    work = cfg.work_dir
    full = load_checkpoint_safely(osp.join(work, 'epoch_1.pth'))
    adapter_path = osp.join(work, 'adapter_epoch_1.pth')
    base = load_checkpoint_safely(osp.join(work, 'base_weights.pth'))
    adapter = load_checkpoint_safely(adapter_path)
    assert adapter['meta']['epoch'] == 1 and adapter['meta']['iter'] == 2

    # The adapter holds exactly what training changed.
    changed = {k for k, v in full['state_dict'].items()
               if not torch.equal(v, base['state_dict'][k])}
    assert changed and changed <= set(adapter['state_dict'])
    assert any(k.endswith('lora_B') for k in changed)
    assert not any(k.startswith('backbone.') and 'lora_' not in k
                   for k in adapter['state_dict'])
    assert osp.getsize(adapter_path) < 0.3 * osp.getsize(
        osp.join(work, 'epoch_1.pth'))

    model = MODELS.build(cfg.model)
    model.load_state_dict(base['state_dict'], strict=True)
    load_adapter(model, adapter_path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, full['state_dict'][key]), key
