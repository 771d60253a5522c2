"""tools/analysis/mask_targets_benchmark.py: timings and target IoU."""
import json

import pytest

from conftest import run_tool


@pytest.mark.slow
def test_mask_targets_benchmark_small():
    out = run_tool(['tools/analysis/mask_targets_benchmark.py',
                    '--instances', '4', '--rois', '8', '--img-size', '64',
                    '96', '--repeats', '1'], timeout=120)
    res = json.loads(out[out.index('{'):])
    for key in ('bitmap_resize_flip_ms', 'polygon_resize_flip_ms',
                'bitmap_targets_ms', 'polygon_targets_ms'):
        assert res[key] > 0, key
    # Rasterising per RoI and cropping a full-image bitmap agree closely.
    assert 0.85 < res['target_iou'] <= 1.0
