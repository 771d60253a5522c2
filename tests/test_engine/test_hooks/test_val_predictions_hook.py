"""ValPredictionsHook: ground truth beside predictions on val images."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData
from PIL import Image

from rcnn_plugin.apis.drawing import class_colour
from rcnn_plugin.engine import ValPredictionsHook
from rcnn_plugin.engine.hooks.val_predictions_hook import TITLE, to_bgr

CLASSES = ('cell', 'blob')


def _runner(tmp_path, original=True):
    steps = ['Resize', 'LoadAnnotations'] if original else [
        'LoadAnnotations', 'Resize']
    dataset = SimpleNamespace(
        metainfo=dict(classes=CLASSES),
        pipeline=SimpleNamespace(
            transforms=[type(n, (), {})() for n in steps]))
    return SimpleNamespace(work_dir=str(tmp_path),
                           val_dataloader=SimpleNamespace(dataset=dataset))


def _sample(gt=True, preds=True, masks=False):
    # Original image 50 x 100 (h x w), resized x2 to the 100 x 200 input.
    sample = DetDataSample(metainfo=dict(
        scale_factor=(2.0, 2.0), img_shape=(100, 200), ori_shape=(50, 100)))
    if gt:
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.tensor([[10., 10, 30, 40]])),
            labels=torch.tensor([1]))
    if preds:
        pred = InstanceData(
            bboxes=torch.tensor([[60., 5, 90, 45], [0, 0, 5, 5]]),
            labels=torch.tensor([0, 1]), scores=torch.tensor([0.9, 0.1]))
        if masks:
            mask = torch.zeros(2, 50, 100, dtype=torch.bool)
            mask[0, 10:40, 65:85] = True
            pred.masks = mask
        sample.pred_instances = pred
    return sample


def _image():
    return torch.full((3, 100, 200), 128, dtype=torch.uint8)


def test_pair_draws_boxes_in_the_input_frame(tmp_path):
    hook = ValPredictionsHook(panel_height=100)
    hook.before_val_epoch(_runner(tmp_path))
    pair = hook.draw_pair(_image(), _sample())
    assert pair.shape == (TITLE + 100, 2 * 200 + 6, 3)
    colour = np.array(class_colour(1))
    # GT box (10, 10, 30, 40) x 2: its left edge at x = 20, y = 20..80.
    assert (pair[TITLE + 50, 20] == colour).all()
    assert (pair[TITLE + 50, 100] == 128).all()  # inside: untouched
    # The prediction of class 0 at x = 120 in the right panel; the one
    # scoring 0.1 is below the threshold and not drawn.
    right = pair[TITLE:, 206:]
    assert (right[50, 120] == np.array(class_colour(0))).all()
    assert (right[5, 5] == 128).all()


def test_gt_already_in_the_input_frame(tmp_path):
    hook = ValPredictionsHook(panel_height=100)
    hook.before_val_epoch(_runner(tmp_path, original=False))
    pair = hook.draw_pair(_image(), _sample(preds=False))
    # Not scaled: the left edge at x = 10.
    assert (pair[TITLE + 25, 10] == np.array(class_colour(1))).all()


def test_masks_and_empty_panels(tmp_path):
    hook = ValPredictionsHook(panel_height=100)
    hook.before_val_epoch(_runner(tmp_path))
    pair = hook.draw_pair(_image(), _sample(gt=False, masks=True))
    right = pair[TITLE:, 206:]
    assert not (right[50, 150] == 128).all()  # blended mask
    assert (pair[TITLE + 50, 100] == 128).all()  # no ground truth drawn
    pair = hook.draw_pair(_image(), _sample(gt=True, preds=False))
    assert (pair[TITLE:, 206:] == 128).all()  # no prediction drawn


def test_zero_box_instances_draw_empty_panels(tmp_path):
    # present but empty (an image without GT, a model that found nothing)
    hook = ValPredictionsHook(panel_height=100)
    hook.before_val_epoch(_runner(tmp_path))
    sample = _sample(gt=False, preds=False)
    sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.zeros(0, 4)),
        labels=torch.zeros(0, dtype=torch.long))
    sample.pred_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
        scores=torch.zeros(0))
    pair = hook.draw_pair(_image(), sample)
    assert (pair[TITLE:, :200] == 128).all()
    assert (pair[TITLE:, 206:] == 128).all()


def test_writes_a_grid_and_stops_at_num_images(tmp_path):
    hook = ValPredictionsHook(num_images=3, pairs_per_row=2,
                              panel_height=64)
    runner = _runner(tmp_path)
    hook.before_val_epoch(runner)
    batch = dict(inputs=[_image(), _image()])
    for i in range(3):
        hook.after_val_iter(runner, i, batch, [_sample(), _sample()])
    assert len(hook.pairs) == 3
    hook.after_val_epoch(runner, {})
    with Image.open(tmp_path / 'val_predictions.jpg') as img:
        img.load()
        assert img.size[1] == 2 * (TITLE + 64 + 6)  # two rows
    hook.before_val_epoch(runner)
    assert hook.pairs == []
    (tmp_path / 'val_predictions.jpg').unlink()
    hook.after_val_epoch(runner, {})  # nothing drawn: nothing written
    assert not (tmp_path / 'val_predictions.jpg').exists()


def test_to_bgr_any_input():
    gray = torch.linspace(0, 1, 12, dtype=torch.float32).reshape(1, 3, 4)
    out = to_bgr(gray)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255
    assert to_bgr(torch.zeros(4, 2, 2, dtype=torch.uint8)).shape == (2, 2, 3)
    assert to_bgr(torch.zeros(3, 2, 2)).max() == 0  # flat: no division


def test_gt_masks_bitmap(tmp_path):
    hook = ValPredictionsHook(panel_height=100)
    hook.before_val_epoch(_runner(tmp_path))
    sample = _sample(preds=False)
    masks = np.zeros((1, 50, 100), np.uint8)
    masks[0, 10:40, 10:30] = 1
    sample.gt_instances.masks = BitmapMasks(masks, 50, 100)
    pair = hook.draw_pair(_image(), sample)
    assert not (pair[TITLE + 50, 50] == 128).all()


@pytest.mark.parametrize('kwargs', [
    dict(num_images=0), dict(panel_height=8), dict(pairs_per_row=0),
    dict(score_thr=2.0), dict(filename='preds.gif')])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ValPredictionsHook(**kwargs)
