"""tools/analysis/check_dataset.py as a user runs it."""
import json
import os.path as osp
import runpy

import pytest
from PIL import Image

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'analysis', 'check_dataset.py')


def _main():
    return runpy.run_path(TOOL)['main']


def _kitti(root, lines):
    (root / 'image_2').mkdir()
    (root / 'label_2').mkdir()
    Image.new('RGB', (80, 40)).save(root / 'image_2' / '000001.png')
    (root / 'label_2' / '000001.txt').write_text('\n'.join(lines) + '\n')


def test_data_root_mode_writes_report_and_exits_zero(tmp_path, capsys):
    _kitti(tmp_path, ['Car 0 0 0 1 2 30 20 1 1 1 1 1 1 0',
                      'DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1 -1 -1 -1'])
    out = tmp_path / 'r.json'
    rc = _main()(['--data-root', str(tmp_path), '--format', 'kitti',
                  '--classes', 'Car', '--out', str(out)])
    assert rc == 0
    rep = json.loads(out.read_text())['all']
    assert rep['classes'] == {'Car': dict(images=1, instances=1)}
    assert rep['num_ignored'] == 1
    assert 'Car' in capsys.readouterr().out


def test_fatal_problem_exits_nonzero(tmp_path, capsys):
    _kitti(tmp_path, ['Car 0 0 0 1 2 30 20 1 1 1 1 1 1 0'])
    rc = _main()(['--data-root', str(tmp_path), '--format', 'kitti',
                  '--classes', 'Car', 'Pedestrian'])
    assert rc == 1
    assert "FATAL classes_never_present: ['Pedestrian']" in \
        capsys.readouterr().out


def test_config_mode(tmp_path, capsys):
    _kitti(tmp_path, ['Van 0 0 0 1 2 30 20 1 1 1 1 1 1 0'])
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "custom_imports = dict(imports=['rcnn_plugin'])\n"
        'train_dataloader = dict(dataset=dict(type="RepeatDataset", '
        'times=2, dataset=dict(type="KittiDataset", '
        f'data_root="{tmp_path}", data_prefix=dict(img="image_2", '
        'ann="label_2"), metainfo=dict(classes=("Car", )))))\n')
    assert _main()([str(cfg)]) == 1
    assert "unknown_classes: {'Van': 1}" in capsys.readouterr().out


def test_needs_config_or_data_root(capsys):
    with pytest.raises(SystemExit):
        _main()([])
    # --classes / --format with a config were ignored without a word
    with pytest.raises(SystemExit):
        _main()(['c.py', '--classes', 'a', 'b'])
    assert '--classes and --format are for --data-root' in \
        capsys.readouterr().err


def test_data_root_without_format_detects_and_prints_notes(tmp_path,
                                                          capsys):
    (tmp_path / 'images' / 'train').mkdir(parents=True)
    (tmp_path / 'labels' / 'train').mkdir(parents=True)
    Image.new('RGB', (40, 20)).save(tmp_path / 'images/train/a.jpg')
    (tmp_path / 'labels/train/a.txt').write_text('0 0.5 0.5 0.5 0.5\n')
    (tmp_path / 'data.yaml').write_text('names: [cat]\n')
    (tmp_path / 'classes.txt').write_text('Cat\n')
    assert _main()(['--data-root', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "yolo format, splits ['train']" in out
    assert "note: The class-name files disagree (data.yaml: ['cat']; " \
        "classes.txt: ['Cat'])" in out


def test_undetectable_folder_is_a_sentence_not_a_traceback(tmp_path,
                                                            capsys):
    Image.new('RGB', (40, 20)).save(tmp_path / 'a.jpg')
    assert _main()(['--data-root', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: no labels found under {tmp_path}')
    assert 'Traceback' not in err
