"""The ablation driver: validation history, resume, table."""
import json
import os
import os.path as osp
import sys

import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
import run_ablation as ablation  # noqa: E402


def _scalars(work_dir, stamp, records):
    folder = osp.join(work_dir, stamp, 'vis_data')
    os.makedirs(folder)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def test_history_spans_resumed_attempts_and_later_epochs_win(tmp_path):
    _scalars(tmp_path, '20260101_000000', [
        {'loss': 1.0, 'step': 5}, {'pascal_voc/mAP': 0.2, 'step': 1},
        {'pascal_voc/mAP': 0.3, 'step': 2}])
    _scalars(tmp_path, '20260101_010000', [
        {'pascal_voc/mAP': 0.35, 'step': 2},
        {'pascal_voc/mAP': 0.5, 'step': 3}])
    values = [r['pascal_voc/mAP']
              for r in ablation.val_history(str(tmp_path), 'pascal_voc/mAP')]
    assert values == [0.2, 0.35, 0.5]


def test_run_one_trains_resumes_and_records(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, cwd, check):
        calls.append(cmd)
        _scalars(tmp_path, f'stamp{len(calls)}',
                 [{'pascal_voc/mAP': 0.4, 'step': 1},
                  {'pascal_voc/mAP': 0.6, 'step': 2},
                  {'pascal_voc/mAP': 0.5, 'step': 3}])

    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    res = ablation.run_one('c.py', 3, str(tmp_path), 'pascal_voc/mAP')
    assert '--resume' in calls[0] and 'randomness.seed=3' in calls[0]
    assert 'train_cfg.val_interval=1' in calls[0]
    assert (res['last'], res['best'], res['best_epoch']) == (0.5, 0.6, 2)
    # Finished: read back, not trained again.
    assert ablation.run_one('c.py', 3, str(tmp_path),
                            'pascal_voc/mAP') == res
    assert len(calls) == 1


def test_no_validation_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ablation.subprocess, 'run', lambda *a, **k: None)
    with pytest.raises(SystemExit, match='no validation logged'):
        ablation.run_one('c.py', 0, str(tmp_path), 'pascal_voc/mAP')


def test_table_compares_with_the_first_config():
    run = lambda seed, last: dict(seed=seed, last=last, best=last,  # noqa
                                  best_epoch=8, wall_s=600.0)
    rows = ablation.table({'base': [run(0, 0.80), run(1, 0.82)],
                           'giou': [run(0, 0.85)]}, 'pascal_voc/mAP')
    assert rows[2].startswith('| base | 0, 1 | 0.810 ± 0.014 |')
    assert '| +0.000 |' in rows[2]
    assert rows[3].startswith('| giou | 0 | 0.850 |')
    assert '| +0.040 |' in rows[3]


def test_missing_config_is_a_sentence(capsys):
    assert ablation.main(['nope.py', '--work-dir', 'x']) == 2
    assert 'no config nope.py' in capsys.readouterr().err
