"""--overlay: config snippets merged over a config."""
import argparse
import os.path as osp

from mmengine.config import Config

from rcnn_plugin.utils import add_common_args, apply_overlays, load_config

from conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
BASE = osp.join(REPO, 'configs', '_base_')


def test_overlays_merge_dicts_and_replace_lists():
    cfg = apply_overlays(Config.fromfile(DEMO), [
        osp.join(BASE, 'tracking', 'tensorboard.py'),
        osp.join(BASE, 'hooks', 'best-ckpt_early-stop.py')])
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend', 'TensorboardVisBackend']
    assert cfg.visualizer.type == 'DetLocalVisualizer'
    # Merged into the demo's checkpoint hook, not replacing it.
    assert cfg.default_hooks.checkpoint.interval == 4
    assert cfg.default_hooks.checkpoint.save_best == 'coco/bbox_mAP_50'
    # The overlay's list comes first and names the config doctor and the
    # training-health guard again; the config's other hooks follow.
    assert [h['type'] for h in cfg.custom_hooks] == [
        'ConfigDoctorHook', 'TrainingHealthHook', 'ResumableEarlyStoppingHook',
        'RunSummaryHook']
    assert cfg.train_cfg.val_interval == 1
    assert cfg.train_cfg.max_epochs == 4
    assert apply_overlays(cfg, []) is cfg


def test_overlay_flag_then_cfg_options():
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_common_args(parser)
    args = parser.parse_args([
        DEMO, '--overlay', osp.join(BASE, 'tracking', 'wandb_offline.py'),
        '--cfg-options', 'visualizer.name=mine'])
    cfg = load_config(args)
    backend = cfg.visualizer.vis_backends[1]
    assert backend['type'] == 'WandbVisBackend'
    assert backend['init_kwargs']['mode'] == 'offline'
    assert cfg.visualizer.name == 'mine'


def test_an_overlays_hooks_keep_the_configs_other_hooks(tmp_path):
    # The list replaced the config's: the EMA config trained without EMA
    # under --overlay run-folder.py, without a word.
    ema = osp.join(REPO, 'configs', 'bccd_ablation',
                   'faster-rcnn_mobilenetv2_fpn-128_ema-8e_bccd.py')
    cfg = apply_overlays(Config.fromfile(ema),
                         [osp.join(BASE, 'hooks', 'run-folder.py')])
    types = [h['type'] for h in cfg.custom_hooks]
    assert 'EMAHook' in types and len(types) == len(set(types))
    overlay = Config.fromfile(osp.join(BASE, 'hooks', 'run-folder.py'))
    assert types[:len(overlay.custom_hooks)] == [
        h['type'] for h in overlay.custom_hooks]  # its indices hold
    # mmengine's EarlyStoppingHook gives way to the resumable subclass,
    # and an empty list still removes every hook
    cfg = Config(dict(custom_hooks=[
        dict(type='EarlyStoppingHook', monitor='x'), dict(type='EMAHook')]))
    apply_overlays(cfg, [osp.join(BASE, 'hooks', 'run-folder.py')])
    types = [h['type'] for h in cfg.custom_hooks]
    assert 'EarlyStoppingHook' not in types and types[-1] == 'EMAHook'
    empty = tmp_path / 'no_hooks.py'
    empty.write_text('custom_hooks = []\n')
    assert apply_overlays(cfg, [str(empty)]).custom_hooks == []
