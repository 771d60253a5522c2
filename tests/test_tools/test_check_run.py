"""tools/misc/check_run.py: the demo's pass / fail on held-out mAP@0.5."""
import json
import os
import os.path as osp
import sys

import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
import check_run  # noqa: E402


def _run_dir(tmp_path, records, health=None):
    vis = tmp_path / '20261202_000000' / 'vis_data'
    os.makedirs(vis)
    with open(vis / 'scalars.json', 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')
    if health is not None:
        with open(tmp_path / 'health.json', 'w') as f:
            json.dump(health, f)
    return str(tmp_path)


TRAIN = {'loss': 1.2, 'lr': 0.005, 'step': 10}


@pytest.mark.parametrize('value,floor,code', [(1.0, 0.9, 0), (0.031, 0.9, 1),
                                              (0.5, None, 0)])
def test_floor(tmp_path, capsys, value, floor, code):
    work = _run_dir(tmp_path, [TRAIN, {'coco/bbox_mAP_50': value,
                                       'coco/bbox_mAP': value / 2,
                                       'step': 4}])
    argv = [work] + ([] if floor is None else ['--min', str(floor)])
    assert check_run.main(argv) == code
    out = capsys.readouterr()
    assert f'{value:.3f}' in out.out + out.err
    if code:
        assert 'did not converge' in out.err


def test_last_validation_record_wins(tmp_path):
    work = _run_dir(tmp_path, [{'coco/bbox_mAP_50': 0.2, 'step': 1}, TRAIN,
                               {'coco/bbox_mAP_50': 0.95, 'step': 2}])
    assert check_run.last_val_metrics(work)[1]['coco/bbox_mAP_50'] == 0.95
    assert check_run.main([work, '--min', '0.9']) == 0


def test_no_run_or_no_metric(tmp_path, capsys):
    assert check_run.main([str(tmp_path)]) == 1
    assert 'did the run reach its validation' in capsys.readouterr().err
    work = _run_dir(tmp_path / 'w', [TRAIN])  # training only, no val
    assert check_run.main([work, '--min', '0.9']) == 1
    assert "has no 'coco/bbox_mAP_50'" in capsys.readouterr().err


def test_health_findings_are_printed(tmp_path, capsys):
    work = _run_dir(tmp_path, [{'coco/bbox_mAP_50': 0.03, 'step': 4}],
                    health={'status': 'warned', 'findings': [
                        {'kind': 'divergence', 'iteration': 34,
                         'message': 'loss 3.1x its early level'}]})
    assert check_run.main([work, '--min', '0.9']) == 1
    assert 'divergence at iteration 34' in capsys.readouterr().out


def test_seed_message():
    from mmengine.config import Config

    from rcnn_plugin.utils import seed_message
    seeded = seed_message(Config(dict(randomness=dict(seed=3))), 3)
    assert seeded.startswith('[train] seed 3 (from the config')
    drawn = seed_message(Config({}), 1070794662)
    assert 'drawn at random' in drawn and 'cannot be repeated' in drawn
