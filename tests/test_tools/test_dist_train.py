"""2-process DDP training on CPU (gloo) through tools/dist_train.sh."""
import glob
import os.path as osp
import socket
import sys

import pytest

from rcnn_plugin.engine import load_checkpoint_safely

from conftest import run_tool

pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_ddp_on_cpu(tiny_config, tmp_path):
    work_dir = str(tmp_path / 'ddp')
    out = run_tool(
        ['bash', 'tools/dist_train.sh', tiny_config, '2', '--work-dir',
         work_dir, '--cfg-options', 'train_dataloader.batch_size=2'],
        env={'PYTHON': sys.executable, 'PORT': str(_free_port()),
             'CUDA_VISIBLE_DEVICES': ''})
    assert 'Distributed launcher: pytorch' in out
    # The DDP model is freed before the group is destroyed (left to
    # interpreter exit, its gloo work aborted a rank in CI).
    assert 'still referenced' not in out
    assert 'Distributed training: True' in out
    # 8 images / (2 processes x 2 per batch) = 2 iterations per epoch.
    assert 'Epoch(train) [1][2/2]' in out
    ckpt = load_checkpoint_safely(osp.join(work_dir, 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == 2
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])
    assert glob.glob(osp.join(work_dir, '*', '*.log'))
