"""tools/train.py and tools/test.py, run as a user runs them."""
import glob
import os.path as osp
import pickle

import pytest
import torch

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine import load_checkpoint_safely

from conftest import REPO, run_tool

pytestmark = pytest.mark.slow


def _ckpt(work_dir, epoch):
    path = osp.join(work_dir, f'epoch_{epoch}.pth')
    assert osp.isfile(path), glob.glob(osp.join(work_dir, '*'))
    return path


def test_train_two_iterations_then_resume_then_test(tiny_config, tmp_path):
    work_dir = str(tmp_path / 'work')
    out = run_tool(['tools/train.py', tiny_config, '--work-dir', work_dir])
    assert 'Epoch(train) [1][2/2]' in out
    first = load_checkpoint_safely(_ckpt(work_dir, 1))
    assert first['meta']['epoch'] == 1 and first['meta']['iter'] == 2

    # Resume (the step that fails with stock mmengine on torch >= 2.6).
    out = run_tool([
        'tools/train.py', tiny_config, '--work-dir', work_dir, '--resume',
        '--cfg-options', 'train_cfg.max_epochs=2'
    ])
    assert 'resumed epoch: 1, iter: 2' in out
    assert 'Epoch(train) [2][2/2]' in out
    assert 'Epoch(train) [1]' not in out
    second = load_checkpoint_safely(_ckpt(work_dir, 2))
    assert second['meta']['iter'] == 4
    changed = [k for k, v in second['state_dict'].items()
               if v.dtype.is_floating_point
               and not torch.equal(v, first['state_dict'][k])]
    assert changed, 'resumed training did not update any weight'

    # Test with --out and --show-dir.
    results = str(tmp_path / 'results.pkl')
    out = run_tool([
        'tools/test.py', tiny_config, _ckpt(work_dir, 2), '--work-dir',
        work_dir, '--out', results, '--show-dir', 'vis'
    ])
    assert 'Epoch(test) [2/2]' in out
    with open(results, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4
    assert {'img_id', 'pred_instances'} <= set(preds[0])
    assert len(glob.glob(osp.join(work_dir, '*', 'vis', '*.jpg'))) == 4


def test_bad_flags_fail_clearly(tiny_config, tmp_path):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', tiny_config, 'x.pth', '--out',
         'r.json'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert '--out must end with .pkl' in proc.stderr


@pytest.mark.slow
def test_amp_on_cpu_trains_in_bfloat16(tiny_config, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA: --amp means float16 there')
    out = run_tool(['tools/train.py', tiny_config, '--amp', '--work-dir',
                    str(tmp_path), '--cfg-options',
                    'train_cfg.val_interval=9'])
    assert 'bfloat16 autocast on CPU' in out
    assert 'rpn_head: RPNHead -> FP32PostRPNHead' in out
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))


def test_make_synthetic_cells_cli(tmp_path):
    out = run_tool(['tools/misc/make_synthetic_cells.py', str(tmp_path),
                    '--num-train', '2', '--num-val', '1', '--img-size', '96'])
    assert osp.join(str(tmp_path), 'annotations', 'val.json') in out
    assert len(glob.glob(osp.join(str(tmp_path), 'train', '*.jpg'))) == 2
