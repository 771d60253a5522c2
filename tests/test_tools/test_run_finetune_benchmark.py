"""The fine-tune benchmark driver: resumes finished runs, tabulates."""
import json
import os.path as osp
import sys

import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
import run_finetune_benchmark as bench  # noqa: E402


def test_finished_run_is_read_not_rerun(tmp_path, monkeypatch):
    done = dict(seed=0, train_s=60.0, wall_s=120.0,
                val=[{'pascal_voc/mAP': 0.5}, {'pascal_voc/mAP': 0.9}],
                test={'pascal_voc/mAP': 0.88, 'coco/bbox_mAP': 0.55})
    (tmp_path / 'finetune.json').write_text(json.dumps(done))
    monkeypatch.setattr(bench.subprocess, 'run', lambda *a, **k: (
        _ for _ in ()).throw(AssertionError('must not train again')))
    assert bench.run_one('bccd', str(tmp_path)) == done


def test_a_run_of_another_command_is_refused_a_cut_one_resumed(
        tmp_path, monkeypatch):
    commands = []

    def fake_run(cmd, cwd, check):
        commands.append(cmd)
        (tmp_path / 'finetune.json').write_text(json.dumps(dict(seed=0)))

    monkeypatch.setattr(bench.subprocess, 'run', fake_run)
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    (tmp_path / 'run.json').write_text(json.dumps(dict(key='other')))
    with pytest.raises(SystemExit, match='begun from another'):
        bench.run_one('bccd', str(tmp_path))
    (tmp_path / 'run.json').unlink()  # an older driver's cut run: resumed
    assert bench.run_one('bccd', str(tmp_path))['seed'] == 0
    assert commands[0][-1] == '--resume'
    assert bench.run_one('bccd', str(tmp_path))['seed'] == 0  # read back
    assert len(commands) == 1
    monkeypatch.setitem(bench.EXTRA, 'bccd', ['--model', 'mask-rcnn'])
    with pytest.raises(SystemExit, match='another config'):
        bench.run_one('bccd', str(tmp_path))


def test_table_reports_last_val_and_test():
    rows = bench.table({'bccd': dict(
        seed=0, lr=0.01, wall_s=600.0, val=[{'pascal_voc/mAP': 0.5},
                                   {'pascal_voc/mAP': 0.9}],
        test={'pascal_voc/mAP': 0.88, 'coco/bbox_mAP': 0.55})})
    assert rows[2] == '| bccd | 0 | 0.01 | 10.0 | 0.900 | 0.880 | 0.550 |'


def test_missing_metrics_are_nan_not_a_crash():
    rows = bench.table({'bcd': dict(seed=0, train_s=30.0, val=[], test={})})
    # A result written before finetune.json recorded the lr: '?'.
    assert rows[2] == '| bcd | 0 | ? | 0.5 | nan | nan | nan |'
