"""rcnn_plugin.utils.run_record: a resumable driver reuses a finished run
only if it was made from the same config, options and checkpoint."""
import hashlib
import json

import pytest

from rcnn_plugin.utils.run_record import (
    begin_run,
    config_key,
    file_sha256,
    reuse_run,
    val_history,
    write_run_record,
)


@pytest.fixture
def config(tmp_path):
    (tmp_path / 'a.pth').write_bytes(b'weights one')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("model = dict(type='M', depth=2)\nload_from = 'a.pth'\n")
    return cfg


def test_file_sha256(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'x')
    assert file_sha256(str(path)) == hashlib.sha256(b'x').hexdigest()
    other = tmp_path / 'g'
    other.write_bytes(b'y')
    assert file_sha256(str(path)) != file_sha256(str(other))
    assert file_sha256(str(tmp_path / 'none')) == 'missing'


def test_config_key_follows_config_options_and_checkpoint(tmp_path,
                                                          config):
    root = str(tmp_path)
    key = config_key('cfg.py', [], root)
    assert config_key('cfg.py', [], root) == key
    # An option that resolves to the config's own value changes nothing.
    assert config_key('cfg.py', ['model.depth=2'], root) == key
    assert config_key('cfg.py', ['model.depth=3'], root) != key
    # Same path, other bytes: a retrained base checkpoint.
    (tmp_path / 'a.pth').write_bytes(b'weights two')
    assert config_key('cfg.py', [], root) != key
    config.write_text("model = dict(type='M', depth=2)\n"
                      "load_from = 'a.pth'\nextra = 1\n")
    assert config_key('cfg.py', [], root) != config_key(
        'cfg.py', ['extra=2'], root)


def test_reuse_run(tmp_path, capsys):
    work = tmp_path / 'run'
    work.mkdir()
    done = work / 'ap50.json'
    assert reuse_run(str(work), str(done), 'k1') is False  # not made yet
    done.write_text('{}')
    # Made by an older driver (no record): reused, and said so.
    assert reuse_run(str(work), str(done), 'k1') is True
    assert 'older driver' in capsys.readouterr().out
    write_run_record(str(work / 'run.json'), 'k1', config='cfg.py')
    assert json.loads((work / 'run.json').read_text())['config'] == 'cfg.py'
    assert reuse_run(str(work), str(done), 'k1') is True
    with pytest.raises(SystemExit, match='another config.*move or delete'):
        reuse_run(str(work), str(done), 'k2')
    # A record kept elsewhere (a surgery checkpoint's <out>.json).
    write_run_record(str(tmp_path / 'x.json'), 'k3')
    assert reuse_run(str(work), str(done), 'k3', str(tmp_path / 'x.json'))


def test_begin_run_resumes_only_a_run_begun_with_the_same_key(tmp_path,
                                                              capsys):
    work = tmp_path / 'run'
    assert begin_run(str(work), 'k1', config='a.py') is False  # nothing cut
    record = json.loads((work / 'run.json').read_text())
    assert record == dict(key='k1', config='a.py')
    # Begun with another key but cut before any checkpoint: nothing to lose.
    assert begin_run(str(work), 'k2') is False
    (work / 'last_checkpoint').write_text('epoch_1.pth')
    assert begin_run(str(work), 'k2') is True
    with pytest.raises(SystemExit, match='begun from another config'):
        begin_run(str(work), 'k1')
    assert json.loads((work / 'run.json').read_text())['key'] == 'k2'
    # A cut run of an older driver (no record) is resumed, and said so.
    (work / 'run.json').unlink()
    assert begin_run(str(work), 'k1', str(work / 'started.json')) is True
    assert 'older driver' in capsys.readouterr().out
    assert json.loads((work / 'started.json').read_text())['key'] == 'k1'


def test_val_history_since_leaves_out_earlier_log_folders(tmp_path):
    for stamp, rows in (('20260101_000000', [{'m': 0.9, 'step': 1},
                                             {'m': 0.7, 'step': 3}]),
                        ('20260102_000000', [{'m': 0.1, 'step': 1},
                                             {'loss': 1.0, 'step': 2}])):
        (tmp_path / stamp / 'vis_data').mkdir(parents=True)
        (tmp_path / stamp / 'vis_data' / 'scalars.json').write_text(
            ''.join(json.dumps(r) + '\n' for r in rows))
    # the later folder's step 1 replaces the earlier one's
    assert [r['m'] for r in val_history(str(tmp_path), 'm')] == [0.1, 0.7]
    assert [r['m'] for r in val_history(str(tmp_path), 'm',
                                        since='20260102_000000')] == [0.1]
    assert val_history(str(tmp_path), 'm', since='20260103') == []
    assert val_history(str(tmp_path), 'other') == []
