import json

import pytest

from rcnn_plugin.utils.fileio import atomic_open


def test_atomic_open_replaces_the_file_whole(tmp_path):
    path = tmp_path / 'sub' / 'result.json'
    with atomic_open(str(path)) as f:
        json.dump({'a': 1}, f)
    assert json.loads(path.read_text()) == {'a': 1}
    assert [p.name for p in path.parent.iterdir()] == ['result.json']


def test_an_error_mid_write_keeps_the_earlier_file(tmp_path):
    path = tmp_path / 'result.json'
    path.write_text('{"earlier": true}')
    with pytest.raises(RuntimeError):
        with atomic_open(str(path)) as f:
            f.write('{"half')
            raise RuntimeError('killed')
    assert json.loads(path.read_text()) == {'earlier': True}
    assert [p.name for p in tmp_path.iterdir()] == ['result.json']


def test_reading_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match='writes'):
        with atomic_open(str(tmp_path / 'x'), 'r'):
            pass
