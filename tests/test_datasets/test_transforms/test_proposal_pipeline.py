"""The proposal transforms of configs/fast_rcnn, on hand-computed boxes.

``LoadProposals`` leaves proposals as an (R, 4) numpy array;
``ProposalBroadcaster`` hands them to mmdet's ``Resize`` / ``RandomFlip`` as
``gt_bboxes``, which take numpy boxes through ``autocast_box_type``.
"""
import numpy as np
import pytest
from mmdet.datasets.transforms import ProposalBroadcaster
from mmdet.utils import register_all_modules

register_all_modules()  # mmdet's Resize and RandomFlip, not mmcv's


def _results(proposals):
    return {
        'img': np.zeros((20, 40, 3), np.uint8), 'img_shape': (20, 40),
        'ori_shape': (20, 40), 'proposals': proposals,
    }


def test_resize_and_flip_move_proposals_like_the_image():
    t = ProposalBroadcaster(transforms=[
        dict(type='Resize', scale=(80, 40), keep_ratio=True),
        dict(type='RandomFlip', prob=1.0, direction='horizontal'),
    ])
    out = t(_results(np.array([[2, 4, 10, 8]], np.float32)))
    assert out['img'].shape[:2] == (40, 80)
    # x2 scale, then x -> 80 - x: (2,4,10,8) -> (4,8,20,16) -> (60,8,76,16)
    np.testing.assert_allclose(out['proposals'], [[60, 8, 76, 16]])
    assert out['proposals'].dtype == np.float32
    assert 'gt_bboxes' not in out


@pytest.mark.parametrize('direction, expected', [
    ('vertical', [[2, 12, 10, 16]]),
    ('diagonal', [[30, 12, 38, 16]]),
])
def test_vertical_and_diagonal_flips(direction, expected):
    t = ProposalBroadcaster(transforms=[
        dict(type='RandomFlip', prob=1.0, direction=direction)])
    out = t(_results(np.array([[2, 4, 10, 8]], np.float32)))
    np.testing.assert_allclose(out['proposals'], expected)


def test_no_proposals():
    t = ProposalBroadcaster(transforms=[
        dict(type='Resize', scale=(80, 40), keep_ratio=True)])
    out = t(_results(np.zeros((0, 4), np.float32)))
    assert out['proposals'].shape == (0, 4)
