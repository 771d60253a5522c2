"""tools/analysis/benchmark.py in --tiny mode on CPU writes its JSON."""
import json

import pytest

from conftest import run_tool


@pytest.mark.slow
def test_benchmark_tiny_ab_writes_json(tiny_config, tmp_path):
    fast = tmp_path / 'tiny_fast.py'
    fast.write_text(
        f"_base_ = '{tiny_config}'\n"
        'model = dict(roi_head=dict(bbox_roi_extractor=dict('
        "type='TorchvisionRoIExtractor')))\n")
    out = tmp_path / 'bench.json'
    stdout = run_tool([
        'tools/analysis/benchmark.py', tiny_config, '--vs', str(fast),
        '--tiny', '--threads', '1', '--out', str(out)], timeout=300)
    assert '| train |' in stdout and '| inference |' in stdout
    res = json.loads(out.read_text())
    assert res['setup']['same_weights'] is True
    assert res['setup']['img_hw'] == [96, 128]
    for part in ('train', 'inference', 'pipeline'):
        assert res[part]['ratio']['n'] == 2, part
        ratio = res[part]['ratio']
        assert 0 < ratio['q1'] <= ratio['median'] <= ratio['q3']
        assert res[part]['a']['median'] > 0 and res[part]['b']['median'] > 0
    assert res['arms']['A']['params'] == res['arms']['B']['params']
    assert res['arms']['A']['params']['total'] > 0
    assert res['arms']['A']['flops']['forward_flops'] > 0
    assert res['configs']['B']['path'] == str(fast)


def test_b_is_a_with_its_options_unless_vs_is_given():
    # --compile (or --vs-cfg-options) without --vs compared A with
    # --cfg-options against B without them: the ratio mixed two changes.
    import argparse
    import importlib.util
    import os.path as osp

    from conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(REPO, 'tools', 'analysis', 'benchmark.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = argparse.Namespace(vs=None, cfg_options={'a': 1, 'b': 2},
                              vs_cfg_options={'b': 3})
    assert tool.cfg_b_options(args) == {'a': 1, 'b': 3}
    args.vs = 'other.py'  # another config: only its own options
    assert tool.cfg_b_options(args) == {'b': 3}
    args.vs, args.vs_cfg_options = None, None
    assert tool.cfg_b_options(args) == {'a': 1, 'b': 2}


@pytest.mark.parametrize('flags, message', [
    (['--rounds', '0'], '--rounds must be >= 1, got 0'),
    (['--batch-size', '0'], '--batch-size must be >= 1, got 0'),
    (['--device', 'cuda', '--clock', 'process'],
     '--clock process measures'),
])
def test_bad_flags_are_sentences_before_building(tiny_config, flags,
                                                 message):
    import subprocess
    import sys

    from conftest import REPO
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/benchmark.py', tiny_config, *flags],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert message in proc.stderr


def test_a_cascade_config_is_a_sentence(tmp_path):
    import subprocess
    import sys

    from conftest import REPO
    cfg = tmp_path / 'cascade.py'
    cfg.write_text("model = dict(roi_head=dict(bbox_head=[dict(), dict()]))\n")
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/benchmark.py', str(cfg)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'no single model.roi_head.bbox_head' in proc.stderr
