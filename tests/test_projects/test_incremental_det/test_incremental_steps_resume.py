"""tools/run_steps.py's decisions without training: which run is skipped,
only tested, resumed or trained again from the start (fake runs; the
Runner and the train / test calls are replaced)."""
import importlib.util
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from projects.IncrementalDet.incremental_det.sequence import Run

from conftest import REPO

TOOL = osp.join(REPO, 'projects', 'IncrementalDet', 'tools', 'run_steps.py')


def _tool():
    spec = importlib.util.spec_from_file_location('run_steps', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(tmp_path, name, teacher=None, trained=True):
    run = Run(name, 'method', 'c.py', (), ('A', ), str(tmp_path / name),
              teacher)
    os.makedirs(run.run_dir, exist_ok=True)
    if trained:
        for f in ('final.pth', 'last_checkpoint'):
            open(osp.join(run.run_dir, f), 'w').close()
        _write_records(run)
    return run


def _write_records(run, finished=True):
    """train.json (``train_time_s`` once the training finished, as
    train_and_test writes it) and, when finished, result.json."""
    info = dict(seed=0, teacher_stamp=_tool().teacher_stamp(run))
    if finished:
        info.update(train_time_s=1.0)
        with open(run.result_file, 'w') as fh:
            json.dump(dict(info, metrics=dict(all_AP50=0.5)), fh)
    with open(osp.join(run.run_dir, 'train.json'), 'w') as fh:
        json.dump(info, fh)


def _no_training(tool, monkeypatch):
    """execute() without configs or training; the train_and_test calls."""
    calls = []
    monkeypatch.setattr(tool, 'run_config',
                        lambda run, args, ref: Config(dict(ref=ref)))
    monkeypatch.setattr(tool, 'prepare_offline', lambda cfg: [])
    monkeypatch.setattr(tool, 'train_and_test',
                        lambda run, cfg, train, seed, stamp: calls.append(
                            (run.name, train, cfg.get('resume'))))
    return calls


def test_a_retrained_teacher_retrains_the_next_step(tmp_path, monkeypatch):
    """The decisions of execute(), without training: a finished run whose
    teacher was retrained starts over (no resume of its old training)."""
    tool = _tool()
    calls = _no_training(tool, monkeypatch)
    args = tool.parse_args(['spec.yml'])
    first = _fake_run(tmp_path, 'a')
    second = _fake_run(tmp_path, 'b', teacher=first)
    assert tool.execute(second, args, set()) == 'skipped'
    assert tool.execute(second, args, {'a'}) == 'trained'
    assert calls == [('b', True, False)]  # not resumed: a new teacher
    assert not osp.exists(second.checkpoint)
    # Interrupted training (no final.pth, train.json as written before
    # training): resumed.
    os.remove(first.checkpoint)
    os.remove(first.result_file)
    _write_records(first, finished=False)
    assert tool.execute(first, args, set()) == 'trained'
    assert calls[-1] == ('a', True, True)


def test_a_run_never_trained_is_not_called_stale(tmp_path, monkeypatch,
                                                  capsys):
    """A successor of a run trained in this invocation, trained for the
    first time: no 'stale' message (nothing of it is thrown away)."""
    tool = _tool()
    calls = _no_training(tool, monkeypatch)
    args = tool.parse_args(['spec.yml'])
    first = _fake_run(tmp_path, 'a')
    second = _fake_run(tmp_path, 'b', teacher=first, trained=False)
    assert tool.execute(second, args, {'a'}) == 'trained'
    assert calls == [('b', True, False)]
    assert 'stale' not in capsys.readouterr().out


def test_a_teacher_changed_in_an_earlier_invocation_is_noticed(
        tmp_path, monkeypatch, capsys):
    """Step 1 was trained again by an invocation that stopped before step 2
    (killed, or step 1's test crashed): step 2, finished on the old
    teacher, is trained again, not skipped."""
    tool = _tool()
    calls = _no_training(tool, monkeypatch)
    args = tool.parse_args(['spec.yml'])
    first = _fake_run(tmp_path, 'a')
    second = _fake_run(tmp_path, 'b', teacher=first)
    assert tool.execute(second, args, set()) == 'skipped'
    with open(first.checkpoint, 'w') as f:  # step 1's new checkpoint
        f.write('retrained')
    os.remove(first.result_file)  # its test crashed: only tested next
    assert tool.execute(first, args, set()) == 'tested'
    assert tool.execute(second, args, set()) == 'trained'
    assert calls == [('a', False, None), ('b', True, False)]
    assert 'b is stale, trained again from the start' in capsys.readouterr(
    ).out
    assert not osp.exists(second.checkpoint)


def test_deleting_final_pth_retrains_the_run_and_its_successors(
        tmp_path, monkeypatch, capsys):
    """Deleting a finished run's final.pth trains it again from the start
    (it was "resumed": a no-op training that relinked the old weights,
    yet retrained the later runs), and the runs that learn from it, also
    in a later invocation (their teacher's file changed)."""
    tool = _tool()
    calls = []

    def train_and_test(run, cfg, train, seed, stamp):  # what a run makes
        calls.append((run.name, train, cfg.get('resume')))
        with open(run.checkpoint, 'w') as f:
            f.write(f'{run.name} trained again')
        _write_records(run)

    _no_training(tool, monkeypatch)
    monkeypatch.setattr(tool, 'train_and_test', train_and_test)
    args = tool.parse_args(['spec.yml'])
    a = _fake_run(tmp_path, 'a')
    b = _fake_run(tmp_path, 'b', teacher=a)
    c = _fake_run(tmp_path, 'c', teacher=b)
    os.remove(a.checkpoint)
    retrained = set()
    assert [tool.execute(r, args, retrained) for r in (a, b, c)] == \
        ['trained'] * 3
    assert calls == [(n, True, False) for n in 'abc']  # none resumed
    assert 'a is stale, trained again from the start: ' \
        f'{a.checkpoint} was deleted' in capsys.readouterr().out
    # A later invocation retrains b, then stops; the next one retrains c.
    os.remove(b.checkpoint)
    assert tool.execute(a, args, set()) == 'skipped'
    assert tool.execute(b, args, set()) == 'trained'
    assert tool.execute(c, args, set()) == 'trained'
    assert calls[3:] == [('b', True, False), ('c', True, False)]

def test_seed_and_teacher_are_recorded_before_training(tmp_path,
                                                       monkeypatch):
    """A training killed under --seed 0 is not resumed under --seed 1
    (mmengine would restore seed 0 while the record said 1)."""
    tool = _tool()

    class Killed:
        seed = 0

        def train(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(tool.Runner, 'from_cfg', lambda cfg: Killed())
    monkeypatch.setattr(tool, 'seed_message', lambda cfg, seed: '')
    monkeypatch.setattr(tool, 'reset_peak_memory', lambda: False)
    first = _fake_run(tmp_path, 'a')
    second = _fake_run(tmp_path, 'b', teacher=first, trained=False)
    with pytest.raises(KeyboardInterrupt):
        tool.train_and_test(second, Config(), True, 0)
    info = json.load(open(osp.join(second.run_dir, 'train.json')))
    assert info == dict(seed=0, teacher_stamp=tool.teacher_stamp(second),
                        config_stamp=tool.config_stamp(Config()))
    assert info['teacher_stamp']['path'] == osp.realpath(first.checkpoint)
    with pytest.raises(SystemExit, match='trained with seed 0, not --seed 1'):
        tool.execute(second, tool.parse_args(['spec.yml', '--seed', '1']),
                     set())


def test_a_run_of_another_config_is_neither_skipped_nor_resumed(
        tmp_path, monkeypatch):
    """A finished run was skipped (its old numbers in the new table) and an
    interrupted one resumed, whatever --cfg-options said this time."""
    tool = _tool()
    calls = _no_training(tool, monkeypatch)
    lr = {'value': 0.02}
    monkeypatch.setattr(tool, 'run_config', lambda run, args, ref: Config(
        dict(optim_wrapper=dict(optimizer=dict(lr=lr['value'])))))
    done = _fake_run(tmp_path, 'a')
    cut = _fake_run(tmp_path, 'b', trained=False)
    open(osp.join(cut.run_dir, 'last_checkpoint'), 'w').close()
    for run, finished in ((done, True), (cut, False)):
        _write_records(run, finished)
        info = json.load(open(osp.join(run.run_dir, 'train.json')))
        info['config_stamp'] = tool.config_stamp(tool.run_config(run, 0, 0))
        with open(osp.join(run.run_dir, 'train.json'), 'w') as fh:
            json.dump(info, fh)
    args = tool.parse_args(['spec.yml'])
    assert tool.execute(done, args, set()) == 'skipped'  # same config
    assert tool.execute(cut, args, set()) == 'trained'
    assert calls == [('b', True, True)]  # resumed
    # other test settings: the finished run is not another one
    stamp = tool.config_stamp(Config(dict(model=dict(test_cfg=dict(a=1)))))
    assert stamp == tool.config_stamp(Config(dict(model=dict(
        test_cfg=dict(a=2)))))
    lr['value'] = 0.001
    for run in (done, cut):
        with pytest.raises(SystemExit, match='trained with another config'):
            tool.execute(run, args, set())
    assert len(calls) == 1
