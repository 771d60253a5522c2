"""tools/analysis/attack.py: FGSM / PGD evaluation, as a user runs it."""
import glob
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from conftest import REPO, wrap_split

TOOL = osp.join(REPO, 'tools', 'analysis', 'attack.py')


def _tool():
    spec = importlib.util.spec_from_file_location('attack_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_ckpt(tiny_config, tmp_path):
    """An untrained checkpoint of the tiny config (the plumbing is tested,
    not the accuracy)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(tiny_config).model)
    model.init_weights()
    path = str(tmp_path / 'init.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def test_bad_eps_exits_2_with_one_sentence():
    proc = subprocess.run(
        [sys.executable, TOOL, 'cfg.py', 'x.pth', '--eps', '0'], cwd=REPO,
        capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: --eps must be > 0 (pixel units, 0-255), got 0.0.')
    assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('flags,key', [
    (['--eps', '-2'], '--eps'),
    (['--steps', '0'], '--steps'),
    (['--steps', '-1'], '--steps'),
    (['--step-size', '0'], '--step-size'),
    (['--max-images', '0'], '--max-images'),
])
def test_bad_flags_name_the_flag(flags, key, capsys):
    assert _tool().main(['cfg.py', 'x.pth'] + flags) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: {key} must be') and err.count('\n') == 1


def test_unknown_loss_term_names_it_and_lists_the_model_keys(
        tiny_config, tiny_ckpt, tmp_path, capsys):
    code = _tool().main([
        tiny_config, tiny_ckpt, '--loss-terms', 'loss_cls', 'loss_mask',
        '--split', 'val', '--max-images', '1', '--steps', '1',
        '--out-dir', str(tmp_path / 'out')
    ])
    assert code == 2
    err = capsys.readouterr().err
    assert "'loss_mask' is not produced by the model" in err
    assert 'loss_rpn_cls' in err and err.count('\n') == 1


def test_default_out_dir_is_one_folder_per_setting():
    tool = _tool()
    args = tool.parse_args(['configs/x/a.py', 'runs/epoch_8.pth', '--eps',
                            '2'])
    assert tool.default_out_dir(args, tool.attack_settings(args)) == osp.join(
        'work_dirs', 'attack', 'a', 'epoch_8_pgd-cls-eps2')
    args = tool.parse_args(['a.py', 'b.pth', '--attack', 'fgsm', '--eps',
                            '0.5', '--loss-terms', 'loss_cls', 'loss_bbox'])
    assert tool.default_out_dir(args, tool.attack_settings(args)).endswith(
        osp.join('a', 'b_fgsm-loss_cls+loss_bbox-eps0.5'))


def test_gt_after_resize_reads_the_pipeline_order():
    gt_after_resize = _tool().gt_after_resize
    load, resize = dict(type='LoadAnnotations'), dict(type='Resize')
    image = dict(type='LoadImageFromFile')
    assert gt_after_resize([image, resize, load])  # mmdet's test pipelines
    assert not gt_after_resize([image, load, resize])  # train pipelines
    assert not gt_after_resize([image, resize])
    # Fast R-CNN's test pipeline: the Resize inside ProposalBroadcaster
    broadcast = dict(type='ProposalBroadcaster', transforms=[resize])
    assert gt_after_resize([image, dict(type='LoadProposals'), broadcast,
                            load])


@pytest.mark.slow
def test_fgsm_writes_metrics_and_examples(tiny_config, tiny_ckpt, tmp_path,
                                          capsys):
    out_dir = str(tmp_path / 'out')
    code = _tool().main([
        tiny_config, tiny_ckpt, '--attack', 'fgsm', '--eps', '4',
        '--target', 'loc', '--split', 'val', '--max-images', '2',
        '--num-examples', '1', '--seed', '3', '--out-dir', out_dir
    ])
    assert code == 0
    assert '[attack] seed 3' in capsys.readouterr().out
    with open(osp.join(out_dir, 'attack.json')) as f:
        report = json.load(f)
    assert report['num_images'] == 2 and report['seed'] == 3
    assert report['steps'] == 1 and report['step_size'] == 4.0
    assert report['loss_terms'] == ['loss_rpn_bbox', 'loss_bbox']
    assert 0 < report['max_abs_perturbation'] <= 4.0 + 1e-4
    assert report['gt_rescaled']  # the demo test pipeline: 96 px -> 320 px
    assert 'coco/bbox_mAP' in report['clean']
    assert set(report['adversarial']) == set(report['clean'])
    assert len(glob.glob(osp.join(out_dir, 'examples', '*.png'))) == 1

    # a rerun into the same folder is refused before it runs; file kept
    kept = open(osp.join(out_dir, 'attack.json')).read()
    assert _tool().main([tiny_config, tiny_ckpt, '--out-dir', out_dir]) == 2
    assert 'attack.json exists (an earlier run): add --overwrite' in \
        capsys.readouterr().err
    assert open(osp.join(out_dir, 'attack.json')).read() == kept


@pytest.mark.slow
def test_wrapped_split_rescales_gt_and_takes_the_first_images(
        tiny_config, tiny_ckpt, tmp_path):
    """A split behind a dataset wrapper (no pipeline of its own, no
    get_subset): the leaf's pipeline decides the ground-truth rescale, and
    --max-images still takes the first images."""
    wrapped = wrap_split(tiny_config, 'val', str(tmp_path / 'wrapped.py'))
    out_dir = str(tmp_path / 'out')
    code = _tool().main([
        wrapped, tiny_ckpt, '--attack', 'fgsm', '--eps', '2', '--split',
        'val', '--max-images', '1', '--num-examples', '0', '--out-dir',
        out_dir
    ])
    assert code == 0
    with open(osp.join(out_dir, 'attack.json')) as f:
        report = json.load(f)
    assert report['gt_rescaled']  # read from the leaf's test pipeline
    assert report['num_images'] == 1
    assert 'coco/bbox_mAP' in report['adversarial']


def test_attack_without_ground_truth_is_a_sentence():
    # mmdet's PackDetInputs packs an empty gt_instances when the pipeline
    # has no LoadAnnotations: the check passed and the loss failed on the
    # missing labels.
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    tool = _tool()
    data = dict(inputs=[torch.zeros(3, 8, 8)],
                data_samples=[DetDataSample(gt_instances=InstanceData())])
    with pytest.raises(tool.NoGroundTruthError, match='LoadAnnotations'):
        tool.attack_batch(None, data, {}, False, None)


def test_an_attack_that_leaves_no_detection_scores_zero(
        tiny_config, tiny_ckpt, tmp_path, monkeypatch):
    # mmdet's CocoMetric returns {} when nothing is detected: attack.json
    # had "adversarial": {} and the table printed nan.
    from mmengine.evaluator import Evaluator
    evaluate, calls = Evaluator.evaluate, []

    def nothing_when_attacked(self, size):
        calls.append(size)
        return evaluate(self, size) if len(calls) == 1 else {}
    monkeypatch.setattr(Evaluator, 'evaluate', nothing_when_attacked)
    out_dir = str(tmp_path / 'out')
    assert _tool().main([
        tiny_config, tiny_ckpt, '--attack', 'fgsm', '--eps', '2',
        '--split', 'val', '--max-images', '1', '--num-examples', '0',
        '--out-dir', out_dir]) == 0
    with open(osp.join(out_dir, 'attack.json')) as f:
        report = json.load(f)
    assert report['adversarial']['coco/bbox_mAP'] == 0.0
    assert set(report['adversarial']) <= set(report['clean'])
