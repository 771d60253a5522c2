import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import rcnn_plugin  # noqa: F401  (registers the safe loader)
from rcnn_plugin.utils import (
    TRUST_ENV,
    UnsafeCheckpointError,
    load_checkpoint_safely,
    trust_checkpoint,
)


class _Payload:
    """Unpickling this object would write a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _mmengine_like_checkpoint():
    buf = HistoryBuffer()
    buf.update(0.5)
    return {
        'meta': {'epoch': 1, 'iter': 2, 'seed': np.int64(7),
                 'dataset_meta': {'classes': ('a', 'b')}},
        'state_dict': {'w': torch.ones(2)},
        'message_hub': {'log_scalars': {'train/loss': buf},
                        'runtime_info': {'arr': np.arange(3.0),
                                         'f': np.float64(1.5)}},
    }


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    ckpt = load_checkpoint_safely(str(path))
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and loss.current() == 0.5
    assert ckpt['meta']['seed'] == 7
    np.testing.assert_array_equal(
        ckpt['message_hub']['runtime_info']['arr'], np.arange(3.0))
    # Through mmengine's own entry point too (load_from / resume use it).
    assert CheckpointLoader._schemes[''] is load_checkpoint_safely
    assert torch.equal(_load_checkpoint(str(path))['state_dict']['w'],
                       torch.ones(2))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(str(path))
    msg = str(err.value)
    assert 'posix.system' in msg or 'os.system' in msg
    assert TRUST_ENV in msg and str(path) in msg
    assert not marker.exists()
    assert isinstance(err.value, pickle.UnpicklingError)


def test_unknown_type_is_named(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'obj': _Plain()}, path)
    with pytest.raises(UnsafeCheckpointError, match='_Plain'):
        load_checkpoint_safely(str(path))


class _Plain:
    pass


def test_trusting_one_file_by_env(tmp_path, monkeypatch):
    path = tmp_path / 'trusted.pth'
    other = tmp_path / 'other.pth'
    torch.save({'obj': _Plain()}, path)
    torch.save({'obj': _Plain()}, other)
    monkeypatch.setenv(TRUST_ENV, str(path))
    assert isinstance(load_checkpoint_safely(str(path))['obj'], _Plain)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_safely(str(other))


def test_trusting_one_file_by_api(tmp_path):
    path = tmp_path / 'api.pth'
    torch.save({'obj': _Plain()}, path)
    trust_checkpoint(str(path))
    assert isinstance(load_checkpoint_safely(str(path))['obj'], _Plain)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint_safely(str(tmp_path / 'missing.pth'))


def test_weights_only_default_untouched():
    """The package never switches weights_only off for everyone."""
    import inspect
    assert inspect.signature(torch.load).parameters[
        'weights_only'].default is None
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') is None


def test_restricted_getattr_only_serves_history_buffer_methods(tmp_path):
    from rcnn_plugin.utils.checkpoint import history_buffer_getattr
    assert history_buffer_getattr(HistoryBuffer, 'mean') is \
        HistoryBuffer.mean
    for obj, name in [(HistoryBuffer, '__class__'), (HistoryBuffer, 'x'),
                      (HistoryBuffer, '__init__'), (np.ndarray, 'min')]:
        with pytest.raises(pickle.UnpicklingError):
            history_buffer_getattr(obj, name)


def test_a_one_cycle_schedulers_state_loads(tmp_path):
    # its anneal_func is pickled as getattr(OneCycleParamScheduler,
    # '_annealing_cos'): a resume with OneCycleLR was refused as unsafe
    from mmengine.optim.scheduler import OneCycleLR
    from mmengine.optim.scheduler.param_scheduler import (
        OneCycleParamScheduler,
    )

    from rcnn_plugin.utils.checkpoint import history_buffer_getattr
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for strategy in ('cos', 'linear'):
        sched = OneCycleLR(opt, eta_max=0.1, total_steps=10,
                           anneal_strategy=strategy)
        torch.save({'param_schedulers': [sched.state_dict()]},
                   tmp_path / 'oc.pth')
        state = load_checkpoint_safely(str(tmp_path / 'oc.pth'))
        assert state['param_schedulers'][0]['anneal_func'] is getattr(
            OneCycleParamScheduler, f'_annealing_{strategy}')
    from rcnn_plugin.utils.checkpoint import _OneCycleName
    for obj, name in ((_OneCycleName, '__init__'),
                      (OneCycleParamScheduler, '_annealing_cos')):
        with pytest.raises(pickle.UnpicklingError):
            history_buffer_getattr(obj, name)


class _GetattrEscape:
    """A pickle that uses getattr to climb to object.__subclasses__."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__subclasses__'))


def test_getattr_escape_is_refused(tmp_path):
    path = tmp_path / 'escape.pth'
    torch.save({'x': _GetattrEscape()}, path)
    with pytest.raises(pickle.UnpicklingError, match='__subclasses__'):
        load_checkpoint_safely(str(path))


def test_numpy1_checkpoint_names_are_accepted(tmp_path):
    """Files saved under numpy 1.x refer to numpy.core, not numpy._core."""
    import zipfile
    path, legacy = tmp_path / 'np2.pth', tmp_path / 'np1.pth'
    torch.save({'arr': np.arange(3.0), 'f': np.float64(2.5)}, path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(legacy, 'w') as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith('data.pkl'):
                assert b'numpy._core.multiarray' in data
                data = data.replace(b'numpy._core.multiarray',
                                    b'numpy.core.multiarray')
            dst.writestr(item, data)
    ckpt = load_checkpoint_safely(str(legacy))
    np.testing.assert_array_equal(ckpt['arr'], np.arange(3.0))
    assert ckpt['f'] == 2.5
