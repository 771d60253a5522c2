"""tools/analysis/run_demo_seeds.py: reuse, resume and the table."""
import importlib.util
import json
import os.path as osp

import pytest

from conftest import REPO


@pytest.fixture
def tool():
    spec = importlib.util.spec_from_file_location(
        'demo_seeds', osp.join(REPO, 'tools', 'analysis', 'run_demo_seeds.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cut_seed_resumes_and_a_finished_one_is_read_back(
        tool, tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(tool.subprocess, 'run',
                        lambda cmd, **kwargs: commands.append(cmd))
    metrics = {k: 0.5 for k in tool.KEYS}
    monkeypatch.setattr(tool, 'last_val_metrics',
                        lambda work_dir: ('scalars.json', metrics))
    work = tmp_path / 'seed3'
    work.mkdir()
    result = tool.run_seed(tool.DEMO, str(work), 3)
    assert '--resume' not in commands[0]
    assert commands[0][-1] == 'randomness.seed=3'
    assert result['seed'] == 3 and result['coco/bbox_mAP_50'] == 0.5
    assert json.loads((work / 'result.json').read_text()) == result
    assert tool.run_seed(tool.DEMO, str(work), 3) == result  # read back
    assert len(commands) == 1
    cut = tmp_path / 'seed4'  # a checkpoint, no result: continues
    cut.mkdir()
    (cut / 'last_checkpoint').write_text(str(cut / 'epoch_2.pth'))
    tool.run_seed(tool.DEMO, str(cut), 4)
    assert commands[1][-1] == '--resume' and len(commands) == 2


def test_a_result_of_another_config_is_not_read_back(tool, tmp_path,
                                                     monkeypatch):
    # The default work dir does not depend on --config: another config's
    # result was printed under this config's name.
    monkeypatch.setattr(tool.subprocess, 'run', lambda cmd, **kwargs: None)
    monkeypatch.setattr(tool, 'last_val_metrics', lambda w: (
        'scalars.json', {k: 0.5 for k in tool.KEYS}))
    work = tmp_path / 'seed0'
    tool.run_seed(tool.DEMO, str(work), 0)
    other = tmp_path / 'other.py'
    other.write_text(f"_base_ = '{osp.join(REPO, tool.DEMO)}'\n"
                     'optim_wrapper = dict(optimizer=dict(lr=0.001))\n')
    with pytest.raises(SystemExit, match='another config'):
        tool.run_seed(str(other), str(work), 0)
    (work / 'result.json').unlink()  # a cut run of the demo: not resumed
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    with pytest.raises(SystemExit, match='begun from another config'):
        tool.run_seed(str(other), str(work), 0)
    (work / 'last_checkpoint').unlink()  # nothing to lose: begun again
    tool.run_seed(str(other), str(work), 0)


def test_a_seed_cut_before_its_last_validation_trains_again(
        tool, tmp_path, monkeypatch):
    # its checkpoint is the last epoch: a resume trains and validates
    # nothing, so the driver trains the seed again instead of failing
    commands = []
    monkeypatch.setattr(tool.subprocess, 'run',
                        lambda cmd, **kwargs: commands.append(cmd))
    found = iter([(None, {}), ('scalars.json', {k: 0.5 for k in tool.KEYS})])
    monkeypatch.setattr(tool, 'last_val_metrics', lambda w: next(found))
    (tmp_path / 'last_checkpoint').write_text('epoch_4.pth')
    assert tool.run_seed(tool.DEMO, str(tmp_path), 0)['seed'] == 0
    assert commands[0][-1] == '--resume' and '--resume' not in commands[1]


def test_no_metrics_is_an_error(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(tool.subprocess, 'run', lambda cmd, **kwargs: None)
    monkeypatch.setattr(tool, 'last_val_metrics', lambda w: (None, {}))
    with pytest.raises(RuntimeError, match='no validation metrics'):
        tool.run_seed(tool.DEMO, str(tmp_path), 0)


def test_summary_of_seeds_without_a_metric(tool):
    # Another config's evaluator logs no per-class precision: the mean row
    # indexed every key and raised KeyError after the second seed, on
    # every rerun.
    results = [dict(seed=0, wall_s=60.0, **{tool.KEYS[1]: 0.9}),
               dict(seed=1, wall_s=120.0, **{tool.KEYS[1]: 0.7})]
    text = tool.summary(results, 'c.py')
    mean = [line for line in text.splitlines() if line.startswith('| mean')]
    assert mean and '0.800' in mean[0] and '| - |' in mean[0]
