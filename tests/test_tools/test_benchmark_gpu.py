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


def test_peak_memory_is_the_variants_own(monkeypatch):
    """Earlier variants' optimizers (momentum) stay allocated while the
    later ones warm up: the peak is taken above what is resident."""
    from types import SimpleNamespace

    import torch

    from rcnn_plugin.utils import gpu_benchmark
    bench = gpu_benchmark.GPUBenchmark.__new__(gpu_benchmark.GPUBenchmark)
    bench.device, bench.warmup = SimpleNamespace(type='cuda'), 1
    bench._step = lambda name, batch, train: (lambda: None)
    gib = 2**30
    monkeypatch.setattr(torch.cuda, 'reset_peak_memory_stats', lambda: None)
    monkeypatch.setattr(torch.cuda, 'memory_allocated', lambda: 3 * gib)
    monkeypatch.setattr(torch.cuda, 'max_memory_allocated', lambda: 5 * gib)
    cell = dict(peak_mem_gb={}, errors={})
    assert bench._warm('fast-bf16', {}, True, cell) is not None
    assert cell['peak_mem_gb'] == {'fast-bf16': 2.0}
