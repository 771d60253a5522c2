"""tools/analysis/test_robustness.py on a tiny model and 2 images."""
import csv
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import REPO, TINY_CONFIG, run_tool

pytestmark = pytest.mark.slow
TOOL = 'tools/analysis/test_robustness.py'
QUICK = ['--corruptions', 'gaussian_noise', 'fog', '--severities', '0', '1',
         '2', '--max-images', '2']


@pytest.fixture(scope='module')
def trained(tmp_path_factory, synthetic_cells):
    """(config, checkpoint) of the tiny Faster R-CNN after 1 epoch."""
    root = tmp_path_factory.mktemp('robustness_model')
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    config = root / 'tiny_faster-rcnn.py'
    config.write_text(TINY_CONFIG.format(base=base,
                                         data_root=synthetic_cells))
    run_tool(['tools/train.py', str(config), '--work-dir', str(root / 'w'),
              '--cfg-options', 'train_cfg.val_interval=9'])
    return str(config), str(root / 'w' / 'epoch_1.pth')


def _tool(args, expect=0):
    proc = subprocess.run([sys.executable, TOOL, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == expect, (proc.stdout + proc.stderr)[-4000:]
    return proc


@pytest.fixture
def tool(monkeypatch, capsys):
    """Run the tool's main() in this process (no start-up cost)."""
    spec = importlib.util.spec_from_file_location(
        'test_robustness_tool', osp.join(REPO, TOOL))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(args, expect=0):
        monkeypatch.setattr(sys, 'argv', [TOOL, *args])
        code = 0
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        assert code == expect, (out + err)[-4000:]
        return out, err
    return run


def test_sweep_tables_resume_and_same_seed(trained, tmp_path, tool):
    config, ckpt = trained
    out_a, out_b = str(tmp_path / 'a'), str(tmp_path / 'b')
    log = _tool([config, ckpt, *QUICK, '--out-dir', out_a]).stdout
    assert '[robustness] seed 0;' in log
    assert 'the first 2 images only' in log
    assert '5/5 fog_s2: coco/bbox_mAP' in log
    res = json.load(open(osp.join(out_a, 'robustness.json')))
    assert res['seed'] == 0 and res['max_images'] == 2
    assert res['corruptions'] == ['gaussian_noise', 'fog']
    assert res['severities'] == [0, 1, 2]
    assert res['classes'] == ['rbc', 'wbc', 'platelet']
    assert res['main_metric'] == 'coco/bbox_mAP'
    clean = res['clean']
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50',
            'per_class/bbox_AP50_wbc'} <= set(clean)
    for key, rows in res['table'].items():  # corruption x severity
        assert list(rows) == ['gaussian_noise', 'fog']
        for row in rows.values():
            assert list(row) == ['0', '1', '2']
            assert row['0'] == clean[key]  # severity 0 is the clean run
    table = res['table']['coco/bbox_mAP_50']
    values = [table[c][s] for c in table for s in ('1', '2')]
    summary = res['summary']['coco/bbox_mAP_50']
    assert summary['mPC'] == pytest.approx(sum(values) / 4)
    assert summary['P'] == clean['coco/bbox_mAP_50'] and summary['n'] == 4
    assert set(res['per_class']) == {'rbc', 'wbc', 'platelet'}
    assert 'per_class/bbox_AP50' in res['per_class']['rbc']
    assert 'coco/precision' in res['per_class']['rbc']  # classwise CocoMetric
    rows = list(csv.reader(open(osp.join(out_a, 'robustness.csv'))))
    assert [r[:2] for r in rows[1:]] == [
        ['clean', '0'], ['gaussian_noise', '1'], ['gaussian_noise', '2'],
        ['fog', '1'], ['fog', '2']]
    assert osp.isfile(osp.join(out_a, 'summary.csv'))
    assert osp.isfile(osp.join(out_a, 'heatmap_coco_bbox_mAP.png'))

    # Run again: every condition is read back, the numbers are the same.
    log, _ = tool([config, ckpt, *QUICK, '--out-dir', out_a])
    assert log.count('done before, skipped') == 5
    again = json.load(open(osp.join(out_a, 'robustness.json')))
    assert again['table'] == res['table']

    # A fresh run with the same seed gives the same numbers.
    tool([config, ckpt, *QUICK, '--out-dir', out_b])
    fresh = json.load(open(osp.join(out_b, 'robustness.json')))
    assert fresh['table'] == res['table']
    assert fresh['summary'] == res['summary']

    # Another seed in the same folder is refused, not mixed in.
    _, err = tool([config, ckpt, *QUICK, '--seed', '1', '--out-dir', out_a],
                  expect=2)
    assert 'holds results of another run (it differs in seed)' in err


@pytest.mark.parametrize('flags,message', [
    (['--corruptions', 'fgo'],
     'unknown corruption \'fgo\'; valid corruptions: gaussian_noise'),
    (['--severities', '1', '6'],
     'severity 6 is not valid; severities are 0 (clean), 1, 2, 3, 4 and 5'),
])
def test_bad_input_exits_2(tool, flags, message):
    _, err = tool(['cfg.py', 'x.pth', *flags], expect=2)
    assert message in err


def test_bad_input_in_a_process_has_no_traceback():
    proc = _tool(['cfg.py', 'x.pth', '--corruptions', 'noise', 'fgo'],
                 expect=2)
    assert 'valid corruptions: gaussian_noise' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_pipeline_without_loading_is_named(trained, tmp_path, tool):
    config, ckpt = trained
    bad = tmp_path / 'no_loading.py'
    bad.write_text(f"_base_ = '{config}'\ntest_dataloader = dict(dataset="
                   "dict(pipeline=[dict(type='PackDetInputs')]))\n")
    _, err = tool([str(bad), ckpt, '--out-dir', str(tmp_path / 'o')],
                  expect=2)
    assert 'test_dataloader.dataset.pipeline has no image-loading step' in err


def test_a_checkpoint_of_another_class_count_is_refused(trained, tmp_path,
                                                        tool):
    # Loaded leniently, its classifier was random and every condition
    # scored near 0.
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    config, _ = trained
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    cfg.model.roi_head.bbox_head.num_classes += 2
    other = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(),
                    meta={}), other)
    _, err = tool([config, other, '--out-dir', str(tmp_path / 'o'),
                   '--corruptions', 'fog', '--severities', '1',
                   '--max-images', '1'], expect=2)
    assert 'does not fit this config' in err


def test_severity_zero_is_clean_in_process(trained, tmp_path):
    from rcnn_plugin.apis.robustness import RobustnessSweep, prepare_config
    config, ckpt = trained
    cfg = prepare_config(Config.fromfile(config), ckpt, 'test',
                         str(tmp_path))
    sweep = RobustnessSweep(cfg, seed=0, max_images=2)
    sweep.start()

    def first_image(corruption, severity):
        return next(iter(sweep.dataloader(corruption, severity)))['inputs'][0]

    clean = first_image(None, 0)
    assert torch.equal(first_image('fog', 0), clean)
    assert not torch.equal(first_image('fog', 3), clean)
    assert torch.equal(first_image('fog', 3), first_image('fog', 3))
    assert sweep.run('fog', 0) == sweep.run(None, 0)
    # CocoMetric scores only the images evaluated, not its whole ann_file
    assert len(sweep.evaluator.metrics[0].img_ids) == 2
    sweep.close()


def test_each_condition_writes_its_own_reports(trained, tmp_path):
    """One evaluator serves every condition: a file-writing metric (the
    tracked configs' PRCurveMetric) writes each condition's per-class
    table into its own folder, not over the previous one's."""
    from mmdet.registry import METRICS

    from rcnn_plugin.apis.robustness import RobustnessSweep, prepare_config
    config, ckpt = trained
    cfg = prepare_config(Config.fromfile(config), ckpt, 'test',
                         str(tmp_path))
    sweep = RobustnessSweep(cfg, seed=0, max_images=2, per_class=False)
    sweep.start()
    pr = METRICS.build(dict(type='PRCurveMetric'))
    pr.dataset_meta = sweep.evaluator.dataset_meta
    sweep.evaluator.metrics.append(pr)
    sweep.run(None, 0), sweep.run('fog', 3)
    sweep.close()
    tables = sorted(p.relative_to(tmp_path).parts[-2]
                    for p in tmp_path.rglob('pr_per_class_ap.csv'))
    assert tables == ['clean', 'fog_s3']
