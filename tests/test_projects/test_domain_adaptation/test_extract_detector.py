"""A teacher-student checkpoint's branch written as a plain detector."""
import os.path as osp

import torch

from conftest import REPO, run_tool

TOOL = osp.join(REPO, 'projects', 'DomainAdaptation', 'tools',
                'extract_detector.py')


def _save(path, state_dict):
    torch.save({'meta': {'dataset_meta': {'classes': ('RBC', 'WBC')},
                         'iter': 400},
                'state_dict': state_dict}, path)


def test_teacher_is_written_without_its_prefix(tmp_path):
    teacher, student = torch.randn(2, 3), torch.randn(2, 3)
    _save(tmp_path / 'mt.pth', {'teacher.backbone.w': teacher,
                                'student.backbone.w': student})
    out = run_tool([TOOL, str(tmp_path / 'mt.pth'), str(tmp_path / 't.pth')])
    assert 'teacher: 1 tensors written' in out
    ckpt = torch.load(tmp_path / 't.pth', weights_only=True)
    assert list(ckpt['state_dict']) == ['backbone.w']
    assert torch.equal(ckpt['state_dict']['backbone.w'], teacher)
    assert ckpt['meta']['dataset_meta']['classes'] == ('RBC', 'WBC')
    run_tool([TOOL, str(tmp_path / 'mt.pth'), str(tmp_path / 's.pth'),
              '--branch', 'student'])
    assert torch.equal(torch.load(tmp_path / 's.pth', weights_only=True)[
        'state_dict']['backbone.w'], student)


def test_plain_checkpoint_is_a_sentence(tmp_path):
    import subprocess
    import sys
    _save(tmp_path / 'plain.pth', {'backbone.w': torch.zeros(1)})
    proc = subprocess.run(
        [sys.executable, TOOL, str(tmp_path / 'plain.pth'),
         str(tmp_path / 'out.pth')], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "holds no teacher.* weights (its top-level names: ['backbone'])" \
        in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_the_source_is_not_overwritten_and_a_new_folder_is_made(tmp_path):
    # dst == src replaced the whole mean-teacher checkpoint (student,
    # optimizer) by the teacher; a missing folder was a torch traceback.
    import subprocess
    import sys
    src = tmp_path / 'mt.pth'
    _save(src, {'teacher.w': torch.ones(1), 'student.w': torch.zeros(1)})
    before = src.read_bytes()
    proc = subprocess.run([sys.executable, TOOL, str(src), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'would destroy the source' in \
        proc.stderr
    assert src.read_bytes() == before
    run_tool([TOOL, str(src), str(tmp_path / 'new' / 't.pth')])
    assert (tmp_path / 'new' / 't.pth').is_file()
