"""The ablation driver: validation history, resume, table."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
import run_ablation as ablation  # noqa: E402

DONE = subprocess.CompletedProcess([], 0)
EPOCHS = "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)\n"


def _config(tmp_path, text=EPOCHS, name='c.py'):
    """A config file outside the work dirs (a run is keyed on it)."""
    folder = tmp_path / 'configs'
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return str(folder / name)


def _scalars(work_dir, stamp, records):
    folder = osp.join(work_dir, stamp, 'vis_data')
    os.makedirs(folder)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def _fake_training(monkeypatch, work_dir, records):
    """tools/train.py replaced: it logs ``records`` in one attempt."""
    def fake_run(cmd, cwd, check):
        _scalars(work_dir, 'stamp', records)
        return DONE

    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)


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
    cfg = _config(tmp_path)
    calls = []

    def fake_run(cmd, cwd, check):
        calls.append(cmd)
        _scalars(tmp_path, f'stamp{len(calls)}',
                 [{'pascal_voc/mAP': 0.4, 'step': 1},
                  {'pascal_voc/mAP': 0.6, 'step': 2},
                  {'pascal_voc/mAP': 0.5, 'step': 3}])
        return DONE

    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    res = ablation.run_one(cfg, 3, str(tmp_path), 'pascal_voc/mAP')
    assert '--resume' in calls[0] and 'randomness.seed=3' in calls[0]
    assert 'train_cfg.val_interval=1' in calls[0]
    assert (res['last'], res['best'], res['best_epoch']) == (0.5, 0.6, 2)
    # Finished: read back, not trained again.
    assert ablation.run_one(cfg, 3, str(tmp_path),
                            'pascal_voc/mAP') == res
    assert len(calls) == 1


def test_a_finished_run_read_under_another_metric_is_rescored(
        tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    # The stored numbers are the first --metric's; they were shown under
    # the second one's name.
    _fake_training(monkeypatch, tmp_path, [
        {'pascal_voc/mAP': 0.4, 'coco/bbox_mAP': 0.2, 'step': 1},
        {'pascal_voc/mAP': 0.6, 'coco/bbox_mAP': 0.3, 'step': 2}])
    first = ablation.run_one(cfg, 0, str(tmp_path), 'pascal_voc/mAP')
    assert (first['last'], first['metric']) == (0.6, 'pascal_voc/mAP')
    monkeypatch.setattr(ablation.subprocess, 'run', None)  # no training
    again = ablation.run_one(cfg, 0, str(tmp_path), 'coco/bbox_mAP')
    assert (again['metric'], again['history'], again['best_epoch']) == (
        'coco/bbox_mAP', [0.2, 0.3], 2)
    with pytest.raises(SystemExit, match="no validation logged 'x/y'"):
        ablation.run_one(cfg, 0, str(tmp_path), 'x/y')


def test_no_validation_is_an_error(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    monkeypatch.setattr(ablation.subprocess, 'run', lambda *a, **k: DONE)
    with pytest.raises(SystemExit, match='no validation logged'):
        ablation.run_one(cfg, 0, str(tmp_path), 'pascal_voc/mAP')


def test_table_compares_with_the_first_config():
    run = lambda seed, last: dict(seed=seed, last=last, best=last,  # noqa
                                  best_epoch=8, wall_s=600.0)
    rows = ablation.table({'base': [run(0, 0.80), run(1, 0.82)],
                           'giou': [run(0, 0.85)]}, 'pascal_voc/mAP')
    assert rows[2].startswith('| base | 0, 1 | 0.810 ± 0.014 |')
    assert '| +0.000 |' in rows[2]
    assert rows[3].startswith('| giou | 0 | 0.850 |')
    # over the seeds both have: against the reference's seed 0 (0.80), not
    # its mean over seeds 0 and 1
    assert '| +0.050 |' in rows[3]
    rows = ablation.table({'base': [run(0, 0.90), dict(seed=1, failed='x')],
                           'b': [run(0, 0.90), run(1, 0.50)]},
                          'pascal_voc/mAP')
    assert '| +0.000 (seeds 0) |' in rows[3]  # was -0.200


def test_also_tabulates_further_metrics_of_the_last_validation(
        tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    _fake_training(monkeypatch, tmp_path, [
        {'pascal_voc/mAP': 0.4, 'coco/bbox_mAP_s': 0.1, 'step': 1},
        {'pascal_voc/mAP': 0.5, 'coco/bbox_mAP_s': 0.3, 'step': 2}])
    res = ablation.run_one(cfg, 0, str(tmp_path), 'pascal_voc/mAP',
                           ['coco/bbox_mAP_s'])
    assert res['also'] == {'coco/bbox_mAP_s': 0.3}
    # Read back from the logs, so a column can be added after the runs.
    again = ablation.run_one(cfg, 0, str(tmp_path), 'pascal_voc/mAP',
                             ['coco/bbox_mAP_s'])
    assert again['also'] == {'coco/bbox_mAP_s': 0.3}
    with pytest.raises(SystemExit, match="no metric coco/nope .*it has "
                       "coco/bbox_mAP_s, pascal_voc/mAP, step"):
        ablation.run_one(cfg, 0, str(tmp_path), 'pascal_voc/mAP',
                         ['coco/nope'])
    run = dict(res, seed=0, wall_s=60.0)
    other = dict(run, seed=1, also={'coco/bbox_mAP_s': 0.2})
    rows = ablation.table({'base': [run, other]}, 'pascal_voc/mAP',
                          ['coco/bbox_mAP_s'])
    assert rows[0].endswith('| last coco/bbox_mAP_s |')
    assert rows[1].count('---') == 7
    assert rows[2].endswith('| 1.0 | 0.250 |')
    # COCO logs -1 where a split has no objects of the kind.
    empty = dict(run, also={'coco/bbox_mAP_s': -1.0})
    rows = ablation.table({'base': [run, empty]}, 'pascal_voc/mAP',
                          ['coco/bbox_mAP_s'])
    assert rows[2].endswith('| 1.0 | - |')


def test_mistyped_also_stops_before_any_training(tmp_path, monkeypatch):
    ref = _write(tmp_path / 'ref.py', REF)
    lever = _write(tmp_path / 'lever.py', "_base_ = './ref.py'\n"
                   "train_dataloader = dict(batch_size=4)\n")
    _scalars(str(tmp_path / 'work' / 'ref' / 'seed_0'), 'stamp',
             [{'pascal_voc/mAP': 0.5, 'step': 1}])
    calls = []
    monkeypatch.setattr(ablation.subprocess, 'run',
                        lambda cmd, **k: calls.append(cmd))
    with pytest.raises(SystemExit, match='no metric coco/typo'):
        ablation.main([ref, lever, '--work-dir', str(tmp_path / 'work'),
                       '--also', 'coco/typo'])
    assert calls == []


def test_missing_config_is_a_sentence(capsys):
    assert ablation.main(['nope.py', '--work-dir', 'x']) == 2
    assert 'no config nope.py' in capsys.readouterr().err


def _write(path, text):
    path.write_text(text)
    return str(path)


REF = """
model = dict(type='FasterRCNN', test_cfg=dict(rcnn=dict(nms=0.5)))
train_dataloader = dict(batch_size=2)
val_dataloader = dict(dataset=dict(ann_file='val.txt'))
val_evaluator = dict(type='VOCMetric')
test_dataloader = dict(dataset=dict(ann_file='test.txt'))
custom_hooks = []
"""


@pytest.mark.parametrize('change, same', [
    ("model = dict(test_cfg=dict(rcnn=dict(nms=0.3)))", True),  # soft-NMS
    ("tta_model = dict(type='DetTTAModel')", True),
    ("train_dataloader = dict(batch_size=4)", False),
    ("model = dict(rpn_head=dict(type='RPNHead'))", False),
])
def test_trains_as_tells_test_time_levers_from_training_ones(
        tmp_path, change, same):
    ref = _write(tmp_path / 'ref.py', REF)
    lever = _write(tmp_path / 'lever.py', f"_base_ = './ref.py'\n{change}\n")
    assert ablation.trains_as(lever, ref) is same


def test_validation_that_steers_training_trains_every_config(tmp_path):
    stop = "custom_hooks = [dict(type='EarlyStoppingHook')]"
    ref = _write(tmp_path / 'ref.py',
                 REF.replace('custom_hooks = []', stop))
    lever = _write(tmp_path / 'lever.py', "_base_ = './ref.py'\n"
                   "model = dict(test_cfg=dict(rcnn=dict(nms=0.3)))\n")
    assert not ablation.trains_as(lever, ref)


def test_test_time_lever_is_evaluated_on_the_reference_checkpoint(
        tmp_path, monkeypatch, capsys):
    from mmengine.config import Config
    ref = _write(tmp_path / 'ref.py', REF)
    lever = _write(tmp_path / 'tta.py', "_base_ = './ref.py'\n"
                   "tta_model = dict(type='DetTTAModel')\n")
    work = tmp_path / 'work'
    calls = []

    def fake_run(cmd, cwd, check):
        calls.append(cmd)
        if 'tools/train.py' in cmd:
            out = cmd[cmd.index('--work-dir') + 1]
            _scalars(out, 'stamp', [{'pascal_voc/mAP': 0.80, 'step': 1}])
            with open(osp.join(out, 'last_checkpoint'), 'w') as f:
                f.write(osp.join(out, 'epoch_1.pth'))
            open(osp.join(out, 'epoch_1.pth'), 'w').close()
        else:  # tools/test.py writes <stamp>/<stamp>.json
            out = osp.join(cmd[cmd.index('--work-dir') + 1], 'stamp')
            os.makedirs(out)
            with open(osp.join(out, 'stamp.json'), 'w') as f:
                f.write(json.dumps({'pascal_voc/mAP': 0.83}) + '\n')
        return DONE

    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)
    assert ablation.main([ref, lever, '--seeds', '0', '--work-dir',
                          str(work)]) == 0
    train, test = calls
    assert 'tools/train.py' in train and 'tools/test.py' in test
    assert test[3] == osp.join(str(work), 'ref', 'seed_0', 'epoch_1.pth')
    assert '--tta' in test
    derived = Config.fromfile(test[2])
    assert derived.test_dataloader.dataset.ann_file == 'val.txt'
    assert derived.test_evaluator.type == 'VOCMetric'
    summary = open(ablation.summary_path(str(work), [ref, lever])).read()
    assert "tta (test-time only: the reference's checkpoints)" in summary
    assert '| 0.830 | - | +0.030 |' in summary
    # Finished: read back, neither trained nor tested again.
    ablation.main([ref, lever, '--seeds', '0', '--work-dir', str(work)])
    assert len(calls) == 2
    # Its checkpoint deleted (the driver reads the logs): still read back,
    # not refused as made from another checkpoint.
    os.remove(osp.join(str(work), 'ref', 'seed_0', 'epoch_1.pth'))
    assert ablation.main([ref, lever, '--seeds', '0', '--work-dir',
                          str(work)]) == 0
    assert len(calls) == 2
    assert '| 0.830 | - | +0.030 |' in open(
        ablation.summary_path(str(work), [ref, lever])).read()


def test_each_set_of_configs_keeps_its_own_summary(tmp_path):
    # sessions run one reference with another lever each time: the second
    # table no longer replaces the first
    ref, a, b = 'configs/x/ref.py', 'configs/x/a.py', 'configs/x/b.py'
    first = ablation.summary_path(str(tmp_path), [ref, a])
    assert osp.basename(first).startswith('summary_ref_')
    assert first != ablation.summary_path(str(tmp_path), [ref, b])
    assert first == ablation.summary_path(str(tmp_path), ['y/ref.py', a])


def test_a_failed_training_is_a_row_saying_why_and_the_rest_go_on(
        tmp_path, monkeypatch, capsys):
    ref = _write(tmp_path / 'ref.py', REF)
    big = _write(tmp_path / 'big.py', "_base_ = './ref.py'\n"
                 "train_dataloader = dict(batch_size=4)\n")
    soft = _write(tmp_path / 'soft.py', "_base_ = './ref.py'\n"
                  "model = dict(test_cfg=dict(rcnn=dict(score_thr=0.1)))\n")
    work = tmp_path / 'work'

    def fake_run(cmd, cwd, check):
        out = cmd[cmd.index('--work-dir') + 1]
        os.makedirs(out, exist_ok=True)
        if 'tools/train.py' in cmd:
            with open(osp.join(out, 'last_checkpoint'), 'w') as f:
                f.write(osp.join(out, 'epoch_1.pth'))
            with open(osp.join(out, 'health.json'), 'w') as f:
                json.dump(dict(findings=[dict(
                    kind='nonfinite', action='stop', iteration=47,
                    message='non-finite values at iteration 47: loss = nan'
                    '\nReplay ...')]), f)
            return subprocess.CompletedProcess(cmd, 1)
        raise AssertionError(cmd)

    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)
    assert ablation.main([ref, big, soft, '--seeds', '0', '--work-dir',
                          str(work)]) == 1
    err = capsys.readouterr().err
    assert 'error: big seed 0: training failed: non-finite values at ' \
        'iteration 47: loss = nan' in err
    # The reference left an epoch's checkpoint before it failed: the lever
    # is not scored on that partial training.
    assert 'error: soft seed 0: no finished reference training' in err
    assert 'error: 3 run(s) failed' in err
    summary = open(ablation.summary_path(str(work), [ref, big, soft])).read()
    assert '| big (seed 0 failed: training failed: non-finite values at ' \
        'iteration 47' in summary
    assert summary.count('| failed | - | - | - |') == 3


def test_a_finished_or_cut_run_of_another_config_is_not_reused(
        tmp_path, monkeypatch):
    # result.json and last_checkpoint were reused whatever config made
    # them: an edited lever config reported (or resumed) the old run.
    cfg = _config(tmp_path)
    calls = []

    def fake_run(cmd, cwd, check):
        calls.append(cmd)
        _scalars(str(tmp_path / 'w'), f'stamp{len(calls)}',
                 [{'pascal_voc/mAP': 0.4, 'step': 1}])
        return DONE
    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)
    ablation.run_one(cfg, 0, str(tmp_path / 'w'), 'pascal_voc/mAP')
    _config(tmp_path, EPOCHS + 'lr = 0.005\n')
    with pytest.raises(ablation.RunFailed, match='made from another config'):
        ablation.run_one(cfg, 0, str(tmp_path / 'w'), 'pascal_voc/mAP')
    os.remove(tmp_path / 'w' / 'result.json')
    (tmp_path / 'w' / 'last_checkpoint').write_text('epoch_1.pth')
    _config(tmp_path)  # begun as the first: resumed
    ablation.run_one(cfg, 0, str(tmp_path / 'w'), 'pascal_voc/mAP')
    assert '--resume' in calls[-1]
    os.remove(tmp_path / 'w' / 'result.json')
    (tmp_path / 'w' / 'last_checkpoint').write_text('epoch_1.pth')
    _config(tmp_path, EPOCHS + 'lr = 0.005\n')
    with pytest.raises(ablation.RunFailed, match='begun from another config'):
        ablation.run_one(cfg, 0, str(tmp_path / 'w'), 'pascal_voc/mAP')


def test_an_iteration_based_config_keeps_its_val_interval(
        tmp_path, monkeypatch):
    cfg = _config(tmp_path, "train_cfg = dict(type='IterBasedTrainLoop', "
                  "max_iters=160, val_interval=80)\n")
    calls = []

    def fake_run(cmd, cwd, check):
        calls.append(cmd)
        _scalars(str(tmp_path / 'w'), 'stamp', [
            {'pascal_voc/mAP': 0.4, 'step': 80},
            {'pascal_voc/mAP': 0.3, 'step': 160}])
        return DONE
    monkeypatch.setattr(ablation.subprocess, 'run', fake_run)
    res = ablation.run_one(cfg, 0, str(tmp_path / 'w'), 'pascal_voc/mAP')
    assert not any('val_interval' in c for c in calls[0])
    assert (res['best'], res['best_epoch']) == (0.4, None)
    # read back under another metric: the whole history, not its last
    (tmp_path / 'w' / 'result.json').write_text(json.dumps(
        dict(res, metric='other')))
    again = ablation.run_one(cfg, 0, str(tmp_path / 'w'), 'pascal_voc/mAP')
    assert (again['history'], again['best']) == ([0.4, 0.3], 0.4)
