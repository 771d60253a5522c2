import importlib.util
import os.path as osp

import numpy as np
import pytest

from conftest import REPO


def _tool():
    path = osp.join(REPO, 'tools', 'analysis', 'proposal_recall.py')
    spec = importlib.util.spec_from_file_location('proposal_recall', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Dataset(list):
    def get_data_info(self, idx):
        return self[idx]


def _info(gt, proposals, ignore=(), labels=None):
    labels = labels or [0] * len(gt)
    inst = [dict(bbox=b, ignore_flag=0, bbox_label=c)
            for b, c in zip(gt, labels)]
    inst += [dict(bbox=b, ignore_flag=1) for b in ignore]
    return dict(instances=inst, proposals=dict(
        bboxes=np.array(proposals, np.float32).reshape(-1, 4)))


def test_recall_by_top_k():
    ds = _Dataset([
        _info([[0, 0, 10, 10]], [[0, 0, 10, 10]]),
        # The match is the second proposal; IoU of the first is 0.
        _info([[20, 20, 30, 30]], [[100, 100, 110, 110], [20, 20, 30, 31]],
              ignore=[[50, 50, 60, 60]]),
        _info([], []),                       # no boxes: not counted
        _info([[0, 0, 10, 10]], []),         # no proposals: missed
    ])
    recall = _tool().proposal_recall(ds, [1, 2])
    assert recall == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    # IoU of [20,20,30,31] with [20,20,30,30] is 100/110 < 0.95.
    assert _tool().proposal_recall(ds, [2], iou_thr=0.95) == {
        2: pytest.approx(1 / 3)}


def test_recall_per_class():
    ds = _Dataset([
        _info([[0, 0, 10, 10], [40, 40, 50, 50]], [[0, 0, 10, 10]],
              labels=[0, 1]),
        _info([[20, 20, 30, 30]], [[20, 20, 30, 30], [40, 40, 50, 50]],
              labels=[1]),
    ])
    tool = _tool()
    assert tool.proposal_recall(ds, [1, 2], per_class=True) == {
        1: {0: 1.0, 1: 0.5}, 2: {0: 1.0, 1: 0.5}}
    # The overall figure counts boxes, not classes: 2 of 3.
    assert tool.proposal_recall(ds, [2]) == {2: pytest.approx(2 / 3)}
    assert tool.proposal_recall(_Dataset([_info([], [])]), [1],
                                per_class=True) == {1: {}}
