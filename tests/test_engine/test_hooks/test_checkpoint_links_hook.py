"""CheckpointLinksHook: best.pth / last.pth in the work dir."""
import os
import os.path as osp
from types import SimpleNamespace

import pytest
from mmengine.logging import MessageHub

from rcnn_plugin.engine import CheckpointLinksHook
from rcnn_plugin.engine.hooks.checkpoint_links_hook import link_or_copy


def _runner(tmp_path, name, **info):
    hub = MessageHub.get_instance(name)
    for key, value in info.items():
        hub.update_info(key, value)
    return SimpleNamespace(work_dir=str(tmp_path), message_hub=hub)


def _ckpt(tmp_path, name, data=b'x'):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_links_are_relative_and_follow_the_checkpoints(tmp_path):
    epoch1 = _ckpt(tmp_path, 'epoch_1.pth', b'1')
    best = _ckpt(tmp_path, 'best_coco_bbox_mAP_epoch_1.pth', b'b')
    runner = _runner(tmp_path, 'links_follow', last_ckpt=epoch1,
                     best_ckpt=best)
    hook = CheckpointLinksHook()
    made = hook.update(runner)
    assert set(made.values()) == {'link'}
    last = tmp_path / 'last.pth'
    assert os.readlink(last) == 'epoch_1.pth'  # relative
    assert (tmp_path / 'best.pth').read_bytes() == b'b'
    assert hook.update(runner) == {}  # unchanged: nothing redone
    epoch2 = _ckpt(tmp_path, 'epoch_2.pth', b'2')
    os.remove(epoch1)  # max_keep_ckpts removed it
    runner.message_hub.update_info('last_ckpt', epoch2)
    hook.after_train_epoch(runner)
    assert last.read_bytes() == b'2'
    # The work dir moved (or was copied): relative links still resolve.
    moved = tmp_path.parent / 'moved'
    os.rename(tmp_path, moved)
    assert (moved / 'last.pth').read_bytes() == b'2'


def test_iteration_saves_are_linked_at_once(tmp_path):
    # IterBasedTrainLoop: CheckpointHook saves in after_train_iter, and
    # max_keep_ckpts=1 removes the previous file; the link followed only
    # at the next validation, pointing at a removed file until then.
    hook = CheckpointLinksHook()
    runner = _runner(tmp_path, 'links_iter')
    calls = []
    update = hook.update
    hook.update = lambda r: calls.append(1) or update(r)
    hook.after_train_iter(runner, 0)  # nothing saved yet
    assert calls == [] and not (tmp_path / 'last.pth').exists()
    last = tmp_path / 'last.pth'
    for it in (2, 4):
        path = _ckpt(tmp_path, f'iter_{it}.pth', str(it).encode())
        if it == 4:
            os.remove(tmp_path / 'iter_2.pth')  # max_keep_ckpts=1
        runner.message_hub.update_info('last_ckpt', path)
        hook.after_train_iter(runner, it - 1)
        assert last.read_bytes() == str(it).encode()
        assert os.readlink(last) == f'iter_{it}.pth'
    assert len(calls) == 2
    hook.after_train_iter(runner, 4)  # unchanged: a string compare only
    assert len(calls) == 2


def test_checkpoints_in_another_dir(tmp_path):
    out = tmp_path / 'ckpts'
    out.mkdir()
    work = tmp_path / 'work'
    work.mkdir()
    runner = _runner(work, 'links_elsewhere',
                     last_ckpt=_ckpt(out, 'epoch_3.pth', b'3'))
    CheckpointLinksHook().after_val_epoch(runner, {})
    assert os.readlink(work / 'last.pth') == osp.join('..', 'ckpts',
                                                       'epoch_3.pth')
    assert not (work / 'best.pth').exists()  # no save_best


def test_several_save_best_keys_use_the_first(tmp_path):
    first = _ckpt(tmp_path, 'best_a.pth', b'a')
    runner = _runner(tmp_path, 'links_multi', best_ckpt_coco_bbox_mAP=first,
                     best_ckpt_loss=_ckpt(tmp_path, 'best_b.pth', b'b'))
    CheckpointLinksHook().after_train(runner)
    assert (tmp_path / 'best.pth').read_bytes() == b'a'


def test_nothing_saved_yet_and_missing_files(tmp_path):
    hook = CheckpointLinksHook()
    assert hook.update(_runner(tmp_path, 'links_none')) == {}
    runner = _runner(tmp_path, 'links_missing',
                     last_ckpt=str(tmp_path / 'gone.pth'))
    assert hook.update(runner) == {}
    assert not (tmp_path / 'last.pth').exists()
    with pytest.raises(FileNotFoundError, match='no such file'):
        link_or_copy(str(tmp_path / 'gone.pth'), str(tmp_path / 'x.pth'))


def test_copy_where_symlinks_fail(tmp_path, monkeypatch):
    target = _ckpt(tmp_path, 'epoch_1.pth', b'weights')

    def refuse(*args, **kwargs):
        raise OSError('symlinks are not supported here')

    monkeypatch.setattr(os, 'symlink', refuse)
    hook = CheckpointLinksHook()
    made = hook.update(_runner(tmp_path, 'links_copy', last_ckpt=target))
    assert list(made.values()) == ['copy'] and hook._warned
    last = tmp_path / 'last.pth'
    assert not last.is_symlink() and last.read_bytes() == b'weights'
    # The same path saved again after validation (save_best, early
    # stopping): the copy follows it.
    with open(target, 'wb') as f:
        f.write(b'weights and early-stopping state')
    os.utime(target, ns=(1, 2))
    runner = _runner(tmp_path, 'links_copy', last_ckpt=target)
    hook.after_val(runner)
    assert last.read_bytes() == b'weights and early-stopping state'
    assert hook.update(runner) == {}  # unchanged: not copied again


def test_bad_names():
    with pytest.raises(ValueError, match='file names'):
        CheckpointLinksHook(best='sub/best.pth')
    with pytest.raises(ValueError, match='file names'):
        CheckpointLinksHook(last='')
