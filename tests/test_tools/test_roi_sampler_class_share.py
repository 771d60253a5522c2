"""tools/analysis/roi_sampler_class_share.py on the real BCCD test split."""
import importlib.util
import os.path as osp
import re

import pytest

from conftest import REPO, bccd_or_skip

TOOL = osp.join(REPO, 'tools', 'analysis', 'roi_sampler_class_share.py')


@pytest.mark.slow
def test_rare_classes_gain_share(capsys):
    root = bccd_or_skip()
    spec = importlib.util.spec_from_file_location('share', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(['--data-root', root, '--split', 'test',
                        '--jitter', '10']) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): [float(v) for v in m.group(2).split(' | ')]
            for m in re.finditer(r'^\| (\w+) \| ([\d. |]+) \|$', out, re.M)}
    rand, bal = rows['RandomSampler'], rows['ClassBalancedPosSampler']
    assert abs(sum(rand[:3]) - 1) < 0.01 and abs(sum(bal[:3]) - 1) < 0.01
    assert bal[1] > rand[1] and bal[2] > rand[2]  # WBC, Platelets gain
    assert bal[3] == rand[3]  # same number of positives per image
