"""Deletion / insertion AUC and the pointing games on a stub detector
whose score is the brightness of the pixels in its box."""
import numpy as np
import pytest
import torch

from rcnn_plugin.evaluation.faithfulness import (
    box_mask,
    centre_gaussian_map,
    deletion_insertion,
    energy_pointing_game,
    match_gt,
    pointing_game,
    random_map,
    saliency_order,
)

BOX = torch.tensor([8., 8., 24., 24.])


def _detect(x):
    score = x[:, :, 8:24, 8:24].mean(dim=(1, 2, 3)) / 255.0
    return [dict(boxes=BOX[None].clone(), scores=s.reshape(1),
                 labels=torch.zeros(1, dtype=torch.long)) for s in score]


def _image():
    x = torch.zeros(1, 3, 32, 32)
    x[:, :, 8:24, 8:24] = 255.0
    return x


def _auc(saliency, mode, seed=0, steps=16):
    return deletion_insertion(_detect, _image(), saliency, BOX, 0, mode,
                              steps, canvas=torch.zeros(3, 32, 32),
                              seed=seed)


def test_a_perfect_map_deletes_fast_and_inserts_fast():
    perfect = box_mask((32, 32), BOX.tolist()).astype(np.float32)
    deletion, curve = _auc(perfect, 'deletion')
    assert curve[0] == 1.0 and curve[-1] == 0.0 and len(curve) == 17
    insertion, _ = _auc(perfect, 'insertion')
    # The box is a quarter of the image: gone (or complete) after 1/4.
    assert deletion == pytest.approx(0.125, abs=0.02)
    assert insertion == pytest.approx(0.875, abs=0.02)
    worst = 1.0 - perfect
    assert _auc(worst, 'deletion')[0] > 0.8


def test_constant_map_scores_the_random_baselines_expectation():
    constant = np.ones((32, 32), np.float32)
    for mode in ('deletion', 'insertion'):
        const = np.mean([_auc(constant, mode, seed)[0] for seed in range(6)])
        rand = np.mean([_auc(random_map((32, 32), seed), mode)[0]
                        for seed in range(6)])
        # Pixels leave in a uniformly random order: the box's brightness
        # falls linearly, AUC 1/2 in expectation.
        assert const == pytest.approx(0.5, abs=0.03)
        assert rand == pytest.approx(0.5, abs=0.03)


def test_ties_are_broken_by_the_seed():
    constant = np.zeros((4, 4))
    assert not np.array_equal(saliency_order(constant, 0),
                              saliency_order(constant, 1))
    ordered = np.arange(16.0).reshape(4, 4)
    assert saliency_order(ordered, 0)[0] == 15


def test_tracking_needs_the_same_class_and_min_iou():
    perfect = box_mask((32, 32), BOX.tolist()).astype(np.float32)
    _, curve = deletion_insertion(_detect, _image(), perfect, BOX, 1,
                                  steps=2, canvas=torch.zeros(3, 32, 32))
    assert (curve == 0).all()  # no detection of class 1
    shifted = torch.tensor([20., 20., 36., 36.])  # IoU 1/31 with BOX
    _, curve = deletion_insertion(_detect, _image(), perfect, shifted, 0,
                                  steps=2, canvas=torch.zeros(3, 32, 32))
    assert (curve == 0).all()
    with pytest.raises(ValueError, match='deletion'):
        deletion_insertion(_detect, _image(), perfect, BOX, 0, 'erase')


def test_default_canvas_is_a_blur():
    perfect = box_mask((32, 32), BOX.tolist()).astype(np.float32)
    auc, curve = deletion_insertion(_detect, _image(), perfect, BOX, 0,
                                    steps=4)
    assert 0 < curve[-1] < 1 and np.isfinite(auc)


def test_pointing_games():
    box = [8, 8, 24, 24]
    sal = np.zeros((32, 32))
    sal[10, 10] = 1.0
    assert pointing_game(sal, box) == 1.0
    assert energy_pointing_game(sal, box) == 1.0
    sal[30, 30] = 2.0
    assert pointing_game(sal, box) == 0.0
    assert energy_pointing_game(sal, box) == pytest.approx(1 / 3)
    flat = np.ones((32, 32))  # ties: the box's share of the image
    assert pointing_game(flat, box) == pytest.approx(0.25)
    assert energy_pointing_game(flat, box) == pytest.approx(0.25)
    assert energy_pointing_game(np.zeros((32, 32)), box) == 0.25
    centre = centre_gaussian_map((32, 32))
    assert pointing_game(centre, box) == 1.0
    assert centre.max() == pytest.approx(1.0, abs=0.01)


def test_match_gt():
    gt = np.array([[0, 0, 10, 10], [8, 8, 24, 24]], np.float32)
    assert match_gt([8, 8, 24, 23], 0, gt, np.array([0, 0])) == 1
    assert match_gt([8, 8, 24, 23], 1, gt, np.array([0, 0])) is None
    assert match_gt([8, 8, 24, 23], 0, np.zeros((0, 4)), []) is None
