"""read_checkpoint, compare_state_dicts and group_by_module."""
import pytest
import torch

from rcnn_plugin.engine import (
    CorruptCheckpointError,
    compare_state_dicts,
    group_by_module,
    read_checkpoint,
)


def test_read_mmengine_bare_and_reference_checkpoints(tmp_path):
    sd = {'a.weight': torch.ones(2)}
    for name, obj, meta in (
            ('mm.pth', {'meta': {'epoch': 1}, 'state_dict': sd}, {'epoch': 1}),
            ('bare.pth', sd, {}),
            ('ref.pth', {'model': sd, 'epoch': 3}, {})):
        torch.save(obj, tmp_path / name)
        got, got_meta = read_checkpoint(str(tmp_path / name))
        assert torch.equal(got['a.weight'], sd['a.weight'])
        assert got_meta == meta


@pytest.mark.parametrize('content,match', [
    (b'', 'not a readable torch checkpoint'),
    (b'garbage' * 20, 'not a readable torch checkpoint'),
])
def test_corrupt_files(tmp_path, content, match):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=match):
        read_checkpoint(str(path))


def test_truncated_and_non_state_dict_files(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CorruptCheckpointError, match='cut.pth'):
        read_checkpoint(str(cut))
    listed = tmp_path / 'list.pth'
    torch.save([1, 2], listed)
    with pytest.raises(CorruptCheckpointError, match='holds a list'):
        read_checkpoint(str(listed))
    empty = tmp_path / 'empty_sd.pth'
    torch.save({'state_dict': {}}, empty)
    with pytest.raises(CorruptCheckpointError, match='no state dict'):
        read_checkpoint(str(empty))
    with pytest.raises(FileNotFoundError):
        read_checkpoint(str(tmp_path / 'absent.pth'))


def test_compare_state_dicts():
    model = {'a': torch.zeros(2), 'b': torch.zeros(3), 'c': torch.zeros(1)}
    ckpt = {'module.a': torch.ones(2), 'b': torch.ones(4), 'd': torch.ones(1)}
    report = compare_state_dicts(ckpt, model)
    assert report == dict(loaded=['a'], missing=['c'], unexpected=['d'],
                          mismatched=[('b', (4, ), (3, ))])
    empty = compare_state_dicts({}, {})
    assert all(v == [] for v in empty.values())


def test_group_by_module():
    sd = {'backbone.layer1.0.w': torch.zeros(2, 3),
          'backbone.layer1.1.w': torch.zeros(4),
          'neck.conv.w': torch.zeros(1)}
    assert group_by_module(sd, 2) == {'backbone.layer1': (2, 10),
                                      'neck.conv': (1, 1)}
    assert group_by_module(sd, 1) == {'backbone': (2, 10), 'neck': (1, 1)}
    with pytest.raises(ValueError, match='depth'):
        group_by_module(sd, 0)
