"""tools/analysis/check_config.py and the plugin's own configs."""
import glob
import json
import os.path as osp
import runpy
import subprocess
import sys

import pytest
from mmengine.config import Config

from rcnn_plugin.config_doctor import (
    format_findings,
    prepare_registries,
    run_checks,
)

from conftest import REPO, bccd_or_skip

TOOL = osp.join(REPO, 'tools', 'analysis', 'check_config.py')
DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '/_base_/' not in p)


def _synthetic_options(root):
    """--cfg-options that point the demo config at the tiny dataset."""
    ann = osp.join(root, 'annotations', 'val.json')
    return [f'{s}_dataloader.dataset.data_root={root}/'
            for s in ('train', 'val', 'test')] + [
                f'val_evaluator.ann_file={ann}',
                f'test_evaluator.ann_file={ann}']


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_own_configs_have_no_errors(path, synthetic_cells):
    """Every check, datasets included where the data is here."""
    cfg = Config.fromfile(path)
    if osp.samefile(path, DEMO):
        cfg.merge_from_dict(dict(
            opt.split('=', 1) for opt in _synthetic_options(synthetic_cells)))
    leaf = cfg.train_dataloader.dataset
    while 'dataset' in leaf:  # wrappers (ClassSubsetDataset, RepeatDataset)
        leaf = leaf['dataset']
    if 'bccd' in leaf.get('data_root', ''):
        bccd_or_skip()
    prepare_registries(cfg)
    root = leaf.get('data_root') or '.'
    findings = run_checks(cfg, skip_data=not osp.isdir(root))
    errors = [f for f in findings if f.severity == 'error']
    # Files that an earlier step of a documented workflow writes (a
    # surgery checkpoint, proposal files, a converted checkpoint) must be
    # reported, by path.
    missing = [p for p in _workflow_products(cfg) if not osp.exists(p)]
    if missing:
        assert errors, f'{path}: missing {missing} not reported'
        for f in errors:
            assert any(osp.basename(p) in f.message for p in missing), \
                format_findings([f])
        return
    assert not errors, format_findings(errors)


def _workflow_products(cfg):
    """Paths under work_dirs/ that a config reads (load_from, proposals),
    and the converted checkpoints under checkpoints/ (torchvision2mmdet.py
    writes them there: configs/torchvision/README.md)."""
    paths = [cfg.get('load_from')]
    for split in ('train', 'val', 'test'):
        ds = cfg.get(f'{split}_dataloader', {}).get('dataset', {})
        while 'dataset' in ds:
            ds = ds['dataset']
        if ds.get('proposal_file'):
            paths.append(osp.join(ds.get('data_root') or '',
                                  ds['proposal_file']))
    return [p for p in paths if isinstance(p, str) and (
        'work_dirs' in p or p.startswith('checkpoints/'))]


def test_tool_clean_config_writes_json(synthetic_cells, tmp_path,
                                       monkeypatch, capsys):
    out = tmp_path / 'report.json'
    monkeypatch.setattr(sys, 'argv', [
        TOOL, DEMO, '--out', str(out), '--checks', 'num_classes',
        'evaluator', 'learning_rate', '--cfg-options',
        *_synthetic_options(synthetic_cells)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(TOOL, run_name='__main__')
    assert exit_.value.code == 0
    assert '0 error(s), 0 warning(s), 0 info' in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report['findings'] == [] and report['summary']['error'] == 0


@pytest.mark.slow
def test_tool_broken_config_exits_non_zero(synthetic_cells, tmp_path):
    out = tmp_path / 'report.json'
    proc = subprocess.run(
        [sys.executable, TOOL, DEMO, '--out', str(out), '--cfg-options',
         *_synthetic_options(synthetic_cells),
         'model.roi_head.bbox_head.num_classes=80',
         'train_dataloader.batch_size=8'],
        cwd=REPO, env={'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1',
                       'RCNN_PLUGIN_OFFLINE': '1', 'PATH': '/usr/bin:/bin'},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600)
    assert proc.returncode == 1, proc.stdout[-4000:]
    # Warnings: the lr is not scaled to batch 8, and on the 8-image set
    # (1 iteration an epoch) training ends before the 50-iteration warm-up.
    assert '1 error(s), 2 warning(s), 0 info' in proc.stdout
    assert 'num_classes' in proc.stdout and 'learning_rate' in proc.stdout
    report = json.loads(out.read_text())
    assert report['summary'] == {'info': 0, 'warning': 2, 'error': 1}
    assert sorted(f['key'] for f in report['findings']
                  if f['severity'] == 'warning') == [
        'optim_wrapper.optimizer.lr', 'param_scheduler[0].end']
    error = [f for f in report['findings'] if f['severity'] == 'error'][0]
    assert error['key'] == 'model.roi_head.bbox_head.num_classes'
    assert error['fix'] == 'set model.roi_head.bbox_head.num_classes=3'
