"""Ordinary command-line mistakes get a sentence, not a traceback or a
silent wrong run: missing files, typed-over options, a resume with
nothing to resume, out-of-range numbers, a converter writing over its
source."""
import argparse
import importlib.util
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config

from rcnn_plugin.apis.tune.cli import options as tune_options
from rcnn_plugin.apis.tune.cli import parse_args as tune_args
from rcnn_plugin.apis.tune.study import StudyError
from rcnn_plugin.utils import (
    UnsafeCheckpointError,
    converted_path,
    load_config,
)
from rcnn_plugin.utils.cli import new_option_keys

from conftest import REPO

BCCD = f'{REPO}/configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'


def _tool(path: str):
    """Import a script of tools/ as a module."""
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def bccd():
    return Config.fromfile(BCCD)


def test_option_typos_are_named_with_the_key_meant(bccd):
    found = new_option_keys(bccd, {'model.test_cfg.rcnn.score_th': 0.5})
    assert len(found) == 1
    assert "'score_th' is not a key of model.test_cfg.rcnn" in found[0]
    assert "'score_thr'" in found[0]
    found = new_option_keys(bccd, {'lod_from': 'x.pth'})
    assert "'lod_from' is not a key of the config" in found[0]
    assert "'load_from'" in found[0]


@pytest.mark.parametrize('key', [
    'model.test_cfg.rcnn.score_thr',  # exists
    'randomness.seed',  # absent here maybe, but a Runner key
    'model.backbone.new_argument',  # a built dict: its class refuses
    'test_evaluator.0.reference_old_ap50',  # a metric's new argument
    'train_cfg.val_interval',
    'tta_model',  # read by tools/test.py --tta
    'efficient_conv_bn_eval',  # read by the Runner from its cfg
    'randomness.deterministic',  # near no existing key: meant
    'env_cfg.resource_limit',
    'default_hooks.early_stop',  # a new named hook
    'model.test_cfg.rcnn._delete_',
])
def test_option_keys_that_are_not_typos_pass(bccd, key):
    assert new_option_keys(bccd, {key: 1}) == []


def test_load_config_refuses_a_missing_config(tmp_path):
    args = argparse.Namespace(
        config=str(tmp_path / 'typo.py'), launcher='none', local_rank=0,
        cfg_options=None, work_dir=None, overlay=[])
    with pytest.raises(SystemExit, match='config file not found: .*typo'):
        load_config(args)


def _train_args(**kw):
    return argparse.Namespace(**dict(dict(amp=False, auto_scale_lr=False,
                                          resume=None), **kw))


def test_resume_with_nothing_to_resume_keeps_load_from(tmp_path, capsys):
    train = _tool('tools/train.py')
    cfg = Config(dict(work_dir=str(tmp_path), load_from='base.pth'))
    train.apply_train_flags(cfg, _train_args(resume='auto'))
    # mmengine would have started from scratch, without the base weights.
    assert cfg.load_from == 'base.pth' and not cfg.get('resume')
    assert 'nothing to resume in' in capsys.readouterr().out
    # A config that sets resume=True must not resume from load_from's
    # optimizer state and epoch either.
    cfg.resume = True
    train.apply_train_flags(cfg, _train_args(resume='auto'))
    assert cfg.load_from == 'base.pth' and cfg.resume is False
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    train.apply_train_flags(cfg, _train_args(resume='auto'))
    assert cfg.resume and cfg.load_from is None
    with pytest.raises(SystemExit, match='checkpoint not found'):
        train.apply_train_flags(cfg, _train_args(
            resume=str(tmp_path / 'missing.pth')))


def test_converter_refuses_to_write_over_its_source(tmp_path):
    parser = argparse.ArgumentParser()
    src = tmp_path / 'model.pth'
    src.write_bytes(b'x')
    with pytest.raises(SystemExit):
        converted_path(parser, str(src), str(src))
    with pytest.raises(SystemExit):
        converted_path(parser, str(src), f'{tmp_path}/./model.pth')
    # A mistyped source over an earlier output: no errno traceback here
    # (the converter then says the source does not exist).
    (tmp_path / 'out.pth').write_bytes(b'y')
    assert converted_path(parser, str(tmp_path / 'typo.pth'),
                          str(tmp_path / 'out.pth'))
    dst = tmp_path / 'new' / 'dir' / 'out.pth'
    assert converted_path(parser, str(src), str(dst)) == str(dst)
    assert dst.parent.is_dir()


def test_unsafe_checkpoint_is_a_value_error_the_tools_catch():
    assert issubclass(UnsafeCheckpointError, ValueError)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)


@pytest.mark.parametrize('extra, match', [
    (['--score-thr', '50'], '--score-thr must be in'),
    (['--onnx', 'missing.onnx', '--backend', 'onnxruntime'],
     '--onnx file not found'),
])
def test_infer_refuses_bad_options(extra, match, tmp_path, capsys):
    infer = _tool('tools/infer.py')
    with pytest.raises(SystemExit):
        infer.parse_args([BCCD, 'none', str(tmp_path)] + extra)
    assert match in capsys.readouterr().err


def test_infer_refuses_a_missing_config_or_checkpoint(tmp_path, capsys):
    infer = _tool('tools/infer.py')
    with pytest.raises(SystemExit):
        infer.parse_args([str(tmp_path / 'typo.py'), 'none', str(tmp_path)])
    assert 'config file not found' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer.parse_args([BCCD, str(tmp_path / 'epoch_1.pth'),
                          str(tmp_path)])
    assert 'checkpoint file not found' in capsys.readouterr().err


def test_infer_says_when_no_image_matches(tmp_path):
    infer = _tool('tools/infer.py')
    with pytest.raises(SystemExit, match='infer.py: error: '):
        infer.main([BCCD, 'none', str(tmp_path / '*.jpg'), '--out-dir',
                    str(tmp_path / 'out'), '--no-progress'])


def test_tune_refuses_val_interval_zero(tmp_path):
    args = tune_args([BCCD, '--space', 'space.py', '--trials', '2',
                      '--val-interval', '0'])
    with pytest.raises(StudyError, match='--val-interval must be at least'):
        tune_options(args)


@pytest.mark.parametrize('extra, match', [
    (['--num-check', '0'], '--num-check must be >= 1'),
    (['--min-match', '95'], '--min-match must be in'),
])
def test_export_refuses_bad_check_options(extra, match, capsys):
    export = _tool('tools/deployment/export_onnx.py')
    with pytest.raises(SystemExit):
        export.parse_args([BCCD, 'none', '--out', 'x.onnx'] + extra)
    assert match in capsys.readouterr().err


def test_export_check_images_that_do_not_decode(tiny_config, tmp_path,
                                                capsys):
    export = _tool('tools/deployment/export_onnx.py')
    cfg = Config.fromfile(tiny_config)
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'not a jpeg')
    args = export.parse_args([tiny_config, 'none', '--out', 'x.onnx',
                              '--check-images', str(bad)])
    with pytest.raises(ValueError, match='none of the images decodes'):
        export.check_images(args, cfg)  # was: a silent check on noise
    assert 'skipped 1 check image(s) that do not decode' in \
        capsys.readouterr().out


def test_checkpoint_of_another_class_count_is_refused(tmp_path):
    from torch import nn

    from rcnn_plugin.engine import check_checkpoint_fits
    model = nn.Sequential(nn.Linear(4, 3))
    path = str(tmp_path / 'fits.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    check_checkpoint_fits(model, path)
    other = nn.Sequential(nn.Linear(4, 5))
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=other.state_dict(), meta=dict(
        dataset_meta=dict(classes=('a', 'b', 'c', 'd')))), path)
    with pytest.raises(ValueError) as err:
        check_checkpoint_fits(model, path, ('a', 'b'))
    for part in ('0.weight [5, 4] in the checkpoint, [3, 4] in the model',
                 "Checkpoint classes: ['a', 'b', 'c', 'd']",
                 "config classes: ['a', 'b']", 'remap_classes.py'):
        assert part in str(err.value)


def _other_class_count_checkpoint(config: str, path: str) -> str:
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    cfg.model.roi_head.bbox_head.num_classes += 2
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def test_predictor_and_test_refuse_another_class_count(tiny_config,
                                                       tmp_path):
    from rcnn_plugin.apis import Predictor

    from conftest import run_tool
    ckpt = _other_class_count_checkpoint(tiny_config,
                                         str(tmp_path / 'other.pth'))
    with pytest.raises(ValueError, match='does not fit this config'):
        Predictor(tiny_config, ckpt)
    with pytest.raises(AssertionError, match='does not fit this config'):
        run_tool(['tools/test.py', tiny_config, ckpt, '--work-dir',
                  str(tmp_path / 'work')])
    with pytest.raises(AssertionError, match='checkpoint file not found'):
        run_tool(['tools/test.py', tiny_config, str(tmp_path / 'typo.pth'),
                  '--work-dir', str(tmp_path / 'work')])


def test_attack_and_error_analysis_refuse_another_class_count(tiny_config,
                                                              tmp_path):
    # They loaded leniently: a random classifier, near-zero numbers.
    from conftest import run_tool
    ckpt = _other_class_count_checkpoint(tiny_config,
                                         str(tmp_path / 'other.pth'))
    with pytest.raises(AssertionError, match='does not fit this config'):
        run_tool(['tools/analysis/attack.py', tiny_config, ckpt,
                  '--out-dir', str(tmp_path / 'attack'), '--max-images',
                  '1'])
    with pytest.raises(AssertionError, match='does not fit this config'):
        run_tool(['tools/analysis/error_analysis.py', tiny_config, ckpt,
                  '--out-dir', str(tmp_path / 'errors')])


def test_predictor_takes_the_configs_classes_when_none_are_recorded(
        tiny_config, tmp_path):
    # A checkpoint without dataset_meta (a merged or a bare one) made mmdet's
    # inferencer assume COCO's 80 classes: class 0 was called 'person'.
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from rcnn_plugin.apis import Predictor
    init_default_scope('mmdet')
    cfg = Config.fromfile(tiny_config)
    path = str(tmp_path / 'bare.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(),
                    meta={}), path)
    classes = Predictor(tiny_config, None).classes
    assert Predictor(tiny_config, path).classes == classes
    assert 'person' not in classes
    # mmdet 2.x's top-level CLASSES are the checkpoint's own: kept
    state = torch.load(path, weights_only=True)
    torch.save(dict(state, meta=dict(CLASSES=('a', 'b', 'c'))), path)
    assert list(Predictor(tiny_config, path).classes) == ['a', 'b', 'c']


def test_an_adapter_file_as_the_checkpoint_is_refused(tiny_config,
                                                      tmp_path):
    # It loaded leniently: every base weight stayed random, one log line.
    from rcnn_plugin.apis import Predictor
    path = str(tmp_path / 'adapter_epoch_1.pth')
    torch.save(dict(meta=dict(format='rcnn_plugin.adapter/1'), state_dict={
        'backbone.conv1.conv.lora_A': torch.zeros(2, 3)}), path)
    with pytest.raises(ValueError, match='adapter checkpoint .*--adapter'):
        Predictor(tiny_config, path)


def test_outputs_of_inputs_with_one_name_do_not_overwrite(tmp_path):
    import cv2
    import numpy as np

    from rcnn_plugin.apis import output_names
    assert output_names(['d/x.jpg', 'd/y.jpg']) == ['x.jpg', 'y.jpg']
    assert output_names(['d/a/x.jpg', 'd/b/x.jpg', 'd/b/y.jpg']) == [
        'a/x.jpg', 'b/x.jpg', 'b/y.jpg']
    assert output_names(['d/x.jpg', 'd/y.png'], stem=True) == ['x', 'y']
    assert output_names(['d/x.jpg', 'd/x.png'], stem=True) == [
        'x_jpg', 'x_png']
    # infer.py: two images named x.jpg in two folders, one glob.
    for sub in ('a', 'b'):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / 'x.jpg'),
                    np.full((32, 48, 3), 60 if sub == 'a' else 200, np.uint8))
    infer = _tool('tools/infer.py')
    out = tmp_path / 'out'
    infer.main([BCCD, 'none', str(tmp_path / '**' / '*.jpg'), '--out-dir',
                str(out), '--no-progress'])
    assert sorted(p.relative_to(out / 'vis').as_posix()
                  for p in (out / 'vis').rglob('*.jpg')) == ['a/x.jpg',
                                                             'b/x.jpg']
