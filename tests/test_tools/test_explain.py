"""tools/analysis/explain.py and explain_benchmark.py on the tiny data."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

CELL = 'wbc'  # a class of the synthetic cells


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', 'analysis', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_explain_writes_maps_pngs_and_index(tiny_config, synthetic_cells,
                                            tmp_path):
    val = osp.join(synthetic_cells, 'val')
    out = str(tmp_path / 'out')
    _tool('explain').main([
        tiny_config, 'none', osp.join(val, '*.jpg'), '--method', 'drise',
        '--masks', '4', '--score-thr', '0', '--max-dets', '2',
        '--out-dir', out])
    index = json.load(open(osp.join(out, 'index.json')))
    assert index['processed'] == 4 and index['skipped'] == []
    entry = index['images'][0]
    maps = np.load(osp.join(out, entry['maps']))
    assert maps.shape == (2, entry['height'], entry['width'])
    assert np.isfinite(maps).all()
    assert osp.isfile(osp.join(out, entry['png']))
    assert {'bbox_xyxy', 'score', 'label', 'class_name'} <= set(
        entry['detections'][0])


def test_image_without_detection_is_counted(tiny_config, synthetic_cells,
                                            tmp_path, capsys):
    val = osp.join(synthetic_cells, 'val')
    out = str(tmp_path / 'out')
    _tool('explain').main([tiny_config, 'none', val, '--method', 'eigencam',
                           '--score-thr', '1.01', '--out-dir', out])
    index = json.load(open(osp.join(out, 'index.json')))
    assert len(index['without_detections']) == 4
    assert '4 without a detection' in capsys.readouterr().out
    # with --classes, the line says the class filter took part
    _tool('explain').main([tiny_config, 'none', val, '--method', 'eigencam',
                           '--score-thr', '1.01', '--out-dir', out + '2',
                           '--classes', CELL])
    assert f">= 1.01 of the classes ['{CELL}']" in capsys.readouterr().out


@pytest.mark.parametrize('flags,message', [
    (['--method', 'lime'], 'valid methods: eigencam, gradcam, odam, drise'),
    (['--method', 'drise', '--masks', '0'], 'mask budget > 0'),
    (['--layer', 'neck.nope'], 'neck.fpn_convs.1'),
    (['--classes', 'dog'], "unknown ['dog']"),
])
def test_bad_flags_exit_2_with_one_sentence(tiny_config, synthetic_cells,
                                            flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        _tool('explain').main([tiny_config, 'none',
                               osp.join(synthetic_cells, 'val')] + flags)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_bad_method_as_a_user_sees_it(tiny_config, synthetic_cells):
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/explain.py', tiny_config, 'none',
         osp.join(synthetic_cells, 'val'), '--method', 'lime'],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert 'valid methods' in proc.stderr


def test_default_out_dir_is_one_per_method():
    args = _tool('explain').parse_args(['c.py', 'none', 'x.jpg', '--method',
                                        'drise'])
    assert args.out_dir == osp.join('outputs', 'explain', 'drise')
    args = _tool('explain').parse_args(['c.py', 'none', 'x.jpg',
                                        '--out-dir', 'o'])
    assert args.out_dir == 'o'


@pytest.mark.slow
def test_benchmark_writes_the_table(tiny_config, tmp_path, capsys):
    out = str(tmp_path / 'bench')
    _tool('explain_benchmark').main([
        tiny_config, 'none', '--split', 'val', '--methods', 'eigencam',
        'drise', '--masks', '2', '--max-images', '1', '--max-dets', '1',
        '--steps', '2', '--score-thr', '0', '--out-dir', out])
    result = json.load(open(osp.join(out, 'faithfulness.json')))
    assert result['complete'] is True and result['max_dets'] == 1
    assert '[1/1] ' in capsys.readouterr().out  # per-image progress
    names = [row['method'] for row in result['table']]
    assert names == ['eigencam', 'drise', 'random', 'centre']
    for row in result['table']:
        assert row['detections'] == 1 and row['images'] == 1
        assert 0 <= row['deletion_auc'] <= 1
        assert 0 <= row['insertion_auc'] <= 1
    table = open(osp.join(out, 'faithfulness.md')).read()
    assert 'deletion AUC' in table and '| centre |' in table

    # --resume keeps the finished image and runs only the next one
    args = [tiny_config, 'none', '--split', 'val', '--methods', 'eigencam',
            'drise', '--masks', '2', '--max-dets', '1', '--steps', '2',
            '--score-thr', '0', '--out-dir', out, '--resume']
    _tool('explain_benchmark').main(args + ['--max-images', '2'])
    resumed = json.load(open(osp.join(out, 'faithfulness.json')))
    assert len(resumed['images']) == 2 and resumed['complete'] is True
    assert resumed['images'][0] == result['images'][0]
    assert '[resume] 1 image(s) kept' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # other settings: refused
        _tool('explain_benchmark').main(
            [a if a != '2' else '3' for a in args] + ['--max-images', '2'])
    assert exc.value.code == 2
    assert 'other settings' in capsys.readouterr().err

    # a rerun without --resume would lose the results: refused, file kept
    kept = open(osp.join(out, 'faithfulness.json')).read()
    for extra in ([], ['--resume', '--overwrite']):
        with pytest.raises(SystemExit) as exc:
            _tool('explain_benchmark').main(
                [a for a in args if a != '--resume'] + extra
                + ['--max-images', '1'])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'exists (an earlier run): add --resume' in err
    assert 'exclude each other' in err
    assert open(osp.join(out, 'faithfulness.json')).read() == kept


@pytest.mark.slow
def test_benchmark_records_unreadable_images(tiny_config, tmp_path, capsys,
                                             monkeypatch):
    """An image that does not decode is listed, not only printed; the run
    is complete when the last image of the range is such a one."""
    tool = _tool('explain_benchmark')
    seen = []
    real = tool.Predictor.read

    def read(self, path):
        seen.append(path)
        return None if len(seen) == 2 else real(self, path)

    monkeypatch.setattr(tool.Predictor, 'read', read)
    out = str(tmp_path / 'bench')
    tool.main([tiny_config, 'none', '--split', 'val', '--methods',
               'eigencam', '--max-images', '2', '--max-dets', '1',
               '--steps', '2', '--score-thr', '0', '--out-dir', out])
    result = json.load(open(osp.join(out, 'faithfulness.json')))
    assert result['complete'] is True
    assert result['unreadable'] == [seen[1]]
    assert [im['file'] for im in result['images']] == [seen[0]]
    assert '1 unreadable (skipped' in capsys.readouterr().out
