"""Every DomainAdaptation config passes the config doctor's data check on
the real BCCD and bcd data. The oracle as first written declared a
Platelets class that bcd never labels; the unit tests on generated data
passed and only the real run stopped (before its first iteration)."""
import glob
import os.path as osp

import pytest
from mmdet.utils import register_all_modules
from mmengine.config import Config

from conftest import REPO, bccd_or_skip, bcd_or_skip

CONFIGS = sorted(glob.glob(osp.join(REPO, 'projects', 'DomainAdaptation',
                                    'configs', '*.py')))


def _redirect_splits(node, split_dir: str) -> int:
    """Point every ``split_dir`` of a config at ``split_dir``; count them."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'split_dir':
                node[key] = split_dir
                count += 1
            else:
                count += _redirect_splits(value, split_dir)
    elif isinstance(node, (list, tuple)):
        count += sum(_redirect_splits(v, split_dir) for v in node)
    return count


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.basename(p) for p in CONFIGS])
def test_doctor_finds_no_data_error(path, tmp_path, monkeypatch):
    from rcnn_plugin.config_doctor import format_findings, run_checks
    bccd_or_skip()
    bcd_or_skip()
    register_all_modules()
    monkeypatch.chdir(REPO)  # the configs' data roots are repo-relative
    cfg = Config.fromfile(path)
    assert _redirect_splits(cfg._cfg_dict, str(tmp_path / 'split')) > 0
    findings = run_checks(cfg, checks=['empty_data'])
    errors = [f for f in findings if f.severity == 'error']
    assert not errors, format_findings(errors)
