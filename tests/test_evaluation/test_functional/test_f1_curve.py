"""f1_curve: precision, recall and F1 against the score threshold."""
import numpy as np
import pytest

from rcnn_plugin.evaluation.functional import (
    CONF_THRS,
    FP,
    IGNORED,
    TP,
    f1_curve,
)


def test_golden_values():
    cur = f1_curve([0.9, 0.8, 0.7, 0.6], [TP, FP, TP, IGNORED], num_gt=3,
                   thresholds=[0.0, 0.65, 0.75, 0.85, 0.95])
    np.testing.assert_allclose(cur['precision'], [2 / 3, 2 / 3, 0.5, 1, 1])
    np.testing.assert_allclose(cur['recall'], [2 / 3, 2 / 3, 1 / 3, 1 / 3,
                                               0])
    np.testing.assert_allclose(cur['f1'], [2 / 3, 2 / 3, 0.4, 0.5, 0.0])


def test_ties_are_kept_together_and_order_does_not_matter():
    cur = f1_curve([0.5, 0.2, 0.5], [FP, TP, TP], num_gt=2,
                   thresholds=[0.5, 0.2])
    np.testing.assert_allclose(cur['precision'], [0.5, 2 / 3])
    np.testing.assert_allclose(cur['recall'], [0.5, 1.0])


@pytest.mark.parametrize('scores,status,num_gt', [
    ([], [], 4),  # no detections
    ([0.9, 0.3], [FP, FP], 0),  # no ground truth
    ([], [], 0),
])
def test_degenerate_inputs(scores, status, num_gt):
    cur = f1_curve(scores, status, num_gt)
    assert len(cur['f1']) == len(CONF_THRS) == 101
    assert not cur['f1'].any() and not cur['recall'].any()
    assert np.isfinite(cur['precision']).all()
