"""rcnn_plugin.utils.run_record: a resumable driver reuses a finished run
only if it was made from the same config, options and checkpoint."""
import json

import pytest

from rcnn_plugin.utils.run_record import (
    config_key,
    file_sha256,
    reuse_run,
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
    assert file_sha256(str(path)) == file_sha256(str(path))
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
