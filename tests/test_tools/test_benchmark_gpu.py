"""tools/benchmark_gpu.sh runs in its CPU smoke-test mode."""
import json
import sys

import pytest

from conftest import run_tool


@pytest.mark.slow
def test_benchmark_gpu_script_cpu_tiny(tmp_path):
    out = tmp_path / 'gpu'
    stdout = run_tool(
        ['bash', 'tools/benchmark_gpu.sh', str(out), '--device', 'cpu',
         '--tiny'], env=dict(PYTHON=sys.executable), timeout=300)
    assert '| train | 1 | fast-bf16 |' in stdout
    res = json.loads((out / 'benchmark_gpu.json').read_text())
    assert res['setup']['tiny'] is True and res['setup']['img_hw'] == [96,
                                                                      128]
    assert res['setup']['forward_flops_per_image']['forward_flops'] > 0
    for part in ('inference', 'train'):
        (cell, ) = res[part]
        assert cell['batch_size'] == 1
        # The plugin's variants run on CPU; every variant either ran or
        # recorded why it could not (mmengine's AMP wrapper needs a GPU).
        for name in ('stock-tf32', 'fast-tf32', 'fast-bf16'):
            assert cell['img_per_s'][name] > 0, (part, name)
        assert set(cell['img_per_s']) | set(cell['errors']) == {
            'stock-tf32', 'stock-fp16', 'stock-bf16', 'fast-tf32',
            'fast-bf16'}
        assert cell['speedup_vs_stock_tf32']['stock-tf32'] == 1.0
    md = (out / 'benchmark_gpu.md').read_text()
    assert md.startswith('| part | batch | variant | img/s |')
    assert (out / 'benchmark_gpu.log').exists()
