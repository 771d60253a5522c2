"""Greedy matching and the curve functions on hand-computed cases."""
import numpy as np
import pytest

from rcnn_plugin.evaluation import (
    FP,
    IGNORED,
    TP,
    box_iou,
    froc_curve,
    match_detections,
    pr_curve,
)


def test_iou_hand_computed():
    iou = box_iou(np.array([[0, 0, 10, 10]]),
                  np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


def test_greedy_by_score_one_gt_per_detection():
    gt = [[0, 0, 10, 10]]
    # The lower-scored, better-overlapping box comes first in the input:
    # the higher score still wins the box.
    status, idx = match_detections([[0, 0, 10, 10], [0, 0, 10, 9]],
                                   [0.5, 0.9], gt)
    assert status.tolist() == [FP, TP] and idx.tolist() == [-1, 0]
    status, _ = match_detections([[0, 0, 10, 10], [0, 0, 10, 9]],
                                 [0.5, 0.9], gt, duplicates='ignore')
    assert status.tolist() == [IGNORED, TP]


def test_best_iou_among_free_boxes():
    gts = [[0, 0, 10, 10], [2, 0, 12, 10]]
    status, idx = match_detections([[2, 0, 12, 10], [0, 0, 10, 10]],
                                   [0.9, 0.8], gts)
    assert status.tolist() == [TP, TP] and idx.tolist() == [1, 0]


def test_iou_ties_take_the_last_box_as_pycocotools():
    # d1 overlaps both boxes by IoU 0.8; taking the first left d2 (IoU
    # 0.73 with g0, 0.45 with g1) a false positive, which COCOeval does not
    gts = [[0, 0, 10, 12.5], [0, -2.5, 10, 10]]
    status, idx = match_detections([[0, 0, 10, 10], [0, 3, 10, 13]],
                                   [0.9, 0.8], gts)
    assert status.tolist() == [TP, TP] and idx.tolist() == [1, 0]


def test_center_criterion_and_ignore_regions():
    gt = [[0, 0, 10, 10]]
    det = [[2, 2, 14, 14]]  # IoU 64/180, centre (8, 8) inside
    assert match_detections(det, [1.0], gt)[0].tolist() == [FP]
    assert match_detections(det, [1.0], gt,
                            criterion='center')[0].tolist() == [TP]
    # Inside a crowd / ignore region: intersection over detection area 1.
    status, _ = match_detections([[60, 60, 90, 90]], [0.9], gt,
                                 ignore_boxes=[[50, 50, 100, 100]])
    assert status.tolist() == [IGNORED]


def test_empty_inputs_and_bad_arguments():
    status, idx = match_detections(np.zeros((0, 4)), [], [[0, 0, 1, 1]])
    assert status.size == 0 and idx.size == 0
    status, _ = match_detections([[0, 0, 1, 1]], [0.3], np.zeros((0, 4)))
    assert status.tolist() == [FP]
    with pytest.raises(ValueError, match='criterion'):
        match_detections([], [], [], criterion='centroid')
    with pytest.raises(ValueError, match='scores'):
        match_detections([[0, 0, 1, 1]], [0.1, 0.2], [])


def test_pr_curve_hand_computed():
    # FP (0.9), TP (0.7), FP (0.6) against 1 box: precision 0, 1/2, 1/3.
    cur = pr_curve([0.9, 0.7, 0.6], [FP, TP, FP], num_gt=1)
    np.testing.assert_allclose(cur['recall'], [0, 1, 1])
    np.testing.assert_allclose(cur['precision'], [0, 0.5, 1 / 3],
                               atol=1e-12)
    assert cur['ap'] == pytest.approx(0.5)
    assert pr_curve([], [], num_gt=2)['ap'] == 0.0
    assert pr_curve([0.4], [FP], num_gt=0)['ap'] == -1.0


def test_froc_curve_hand_computed():
    froc = froc_curve([0.9, 0.7, 0.6], [FP, TP, FP], num_gt=1,
                      num_images=2)
    np.testing.assert_allclose(froc['fps_per_image'], [0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(froc['sensitivity'], [0, 0, 1, 1])
    np.testing.assert_allclose(froc['at_fps'], [0, 0, 1, 1, 1, 1, 1])
    assert froc['cpm'] == pytest.approx(5 / 7)
    # Tied scores form one operating point: TP and FP at 0.8 together.
    froc = froc_curve([0.8, 0.8], [FP, TP], num_gt=1, num_images=1,
                      fps=(0.5, 1.0))
    np.testing.assert_allclose(froc['at_fps'], [0, 1])
