"""Sliced (SAHI) inference and slice-aided evaluation."""
import importlib.util
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from conftest import REPO, TINY_CONFIG

pytest.importorskip('sahi')

from rcnn_plugin.apis.slicing import (  # noqa: E402
    SlicedPredictor,
    check_slice_args,
    import_sahi,
    slice_boxes,
)


class FakePredictor:
    """One box (and mask) at (10, 10, 30, 30) of every input image."""

    classes = ['a', 'b']

    def __init__(self, with_masks=False):
        self.with_masks, self.calls = with_masks, []

    def predict(self, images):
        out = []
        for image in images:
            self.calls.append(image.shape[:2])
            pred = InstanceData()
            pred.bboxes = torch.tensor([[10., 10., 30., 30.]])
            pred.scores = torch.tensor([0.9])
            pred.labels = torch.tensor([1])
            if self.with_masks:
                mask = torch.zeros((1, ) + image.shape[:2], dtype=torch.bool)
                mask[0, 10:30, 10:30] = True
                pred.masks = mask
            out.append(pred)
        return out


# The tiny config at 128 px instead of the demo's 320 px (speed).
SMALL_INPUT = """
val_dataloader['dataset']['pipeline'] = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=(
        'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
"""


@pytest.fixture(scope='module')
def small_config(tmp_path_factory, synthetic_cells):
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    path = tmp_path_factory.mktemp('slicing') / 'tiny.py'
    path.write_text(TINY_CONFIG.format(base=base, data_root=synthetic_cells)
                    + SMALL_INPUT)
    return str(path)


@pytest.fixture(scope='module')
def tiny_predictor(small_config):
    from rcnn_plugin.apis import Predictor
    torch.manual_seed(0)
    return Predictor(small_config)


@pytest.mark.parametrize('overlap', [-0.1, 1.0, 1.5])
def test_overlap_outside_unit_interval_is_an_error(overlap):
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        check_slice_args(512, overlap)
    with pytest.raises(ValueError, match='overlap'):
        SlicedPredictor(FakePredictor(), 512, overlap)


def test_bad_slice_size_and_merge_are_errors():
    with pytest.raises(ValueError, match='slice size'):
        check_slice_args(0, 0.2)
    with pytest.raises(ValueError, match='merge'):
        SlicedPredictor(FakePredictor(), 64, merge='wbf')


def test_missing_sahi_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'sahi', None)
    with pytest.raises(ImportError, match=r"\.\[slice\]"):
        import_sahi()


def test_slice_windows_cover_the_image():
    boxes = slice_boxes(100, 150, 64, 0.25)
    assert all(x2 - x1 == 64 and y2 - y1 == 64 for x1, y1, x2, y2 in boxes)
    assert max(b[2] for b in boxes) == 150 and max(b[3] for b in boxes) == 100
    assert min(b[0] for b in boxes) == 0 and min(b[1] for b in boxes) == 0


def test_slices_are_shifted_into_image_pixels():
    fake = FakePredictor()
    image = np.zeros((64, 128, 3), np.uint8)
    sliced = SlicedPredictor(fake, 64, 0.0, merge='nms', batch_size=3)
    pred = sliced.predict([image])[0]
    assert fake.calls == [(64, 64), (64, 64)]
    boxes = sorted(pred.bboxes.tolist())
    assert boxes == [[10., 10., 30., 30.], [74., 10., 94., 30.]]
    assert pred.labels.tolist() == [1, 1]


class EmptyPredictor(FakePredictor):
    """Detects nothing on any slice."""

    def predict(self, images):
        self.calls += [image.shape[:2] for image in images]
        empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                             labels=torch.zeros(0, dtype=torch.long))
        if self.with_masks:
            empty.masks = torch.zeros(0, 4, 4, dtype=torch.bool)
        return [empty.clone() for _ in images]


@pytest.mark.parametrize('merge', ['nms', 'greedynmm'])
@pytest.mark.parametrize('full_image', [False, True])
def test_no_detection_on_any_slice(merge, full_image):
    fake = EmptyPredictor()
    image = np.zeros((64, 128, 3), np.uint8)
    pred = SlicedPredictor(fake, 64, 0.0, merge=merge,
                           full_image=full_image).predict([image])[0]
    assert len(pred) == 0 and pred.bboxes.shape == (0, 4)
    assert pred.scores.shape == (0, ) and pred.labels.shape == (0, )
    assert len(fake.calls) == 2 + full_image


class ThreeBoxPredictor(FakePredictor):
    """Three boxes, scores 0.2, 0.95 and 0.6, on every input image."""

    def predict(self, images):
        self.calls += [image.shape[:2] for image in images]
        return [InstanceData(
            bboxes=torch.tensor([[0., 0., 8., 8.], [20., 20., 30., 30.],
                                 [40., 40., 60., 50.]]),
            scores=torch.tensor([0.2, 0.95, 0.6]),
            labels=torch.tensor([0, 1, 0])) for _ in images]


@pytest.mark.parametrize('size', [(64, 64), (64, 128)])
def test_score_thr_and_max_per_img_apply_to_small_images(size):
    # An image no larger than one slice gets one full-image pass, and the
    # same filters as a sliced image.
    sliced = SlicedPredictor(ThreeBoxPredictor(), 64, 0.0, score_thr=0.5,
                             max_per_img=1)
    pred = sliced.predict([np.zeros(size + (3, ), np.uint8)])[0]
    assert pred.scores.tolist() == [pytest.approx(0.95)]
    assert pred.labels.tolist() == [1]
    sliced.max_per_img = 5
    pred = sliced.predict([np.zeros(size + (3, ), np.uint8)])[0]
    assert sorted(pred.scores.tolist()) == pytest.approx(
        sorted([0.6, 0.95] * (1 + (size[1] > 64))))


def test_full_image_pass_merges_with_the_slice():
    fake = FakePredictor(with_masks=True)
    image = np.zeros((64, 128, 3), np.uint8)
    sliced = SlicedPredictor(fake, 64, 0.0, merge='greedynmm',
                             full_image=True)
    pred = sliced.predict([image])[0]
    assert fake.calls[-1] == (64, 128)  # the full-image pass
    # the full image's box equals the first slice's: merged into one
    assert len(pred) == 2
    assert pred.masks.shape == (2, 64, 128) and pred.masks.dtype == torch.bool
    right = int(torch.argmax(pred.bboxes[:, 0]))
    assert pred.masks[right, 15:25, 80:90].all()
    assert not pred.masks[right, :, :64].any()


@pytest.mark.parametrize('size', [(64, 64), (64, 128)])
def test_mask_boxes_follow_mmdet_whatever_the_image_size(size):
    # mmdet's box of a mask is [x0, y0, x_last + 1, y_last + 1]; SAHI's
    # polygon box was 1 px short on the right and bottom (29, not 30),
    # while an image no larger than a slice gave the model's (30).
    sliced = SlicedPredictor(FakePredictor(with_masks=True), 64, 0.0)
    pred = sliced.predict([np.zeros(size + (3, ), np.uint8)])[0]
    assert pred.bboxes.tolist()[0] == [10., 10., 30., 30.]
    mask_box = pred.masks[0].nonzero()
    assert mask_box.min(0).values.tolist() == [10, 10]
    assert mask_box.max(0).values.tolist() == [29, 29]


class CoordinatePredictor:
    """A perfect detector of whole objects (label 0): it reports each of
    ``objects`` that lies fully inside its input, a crop of an image whose
    channels 0 and 1 hold each pixel's x and y."""

    classes = ['cell']

    def __init__(self, objects):
        self.objects = objects

    def predict(self, images):
        out = []
        for image in images:
            x0, y0 = int(image[0, 0, 0]), int(image[0, 0, 1])
            h, w = image.shape[:2]
            seen = [(b, s) for b, s in self.objects if b[0] >= x0
                    and b[1] >= y0 and b[2] <= x0 + w and b[3] <= y0 + h]
            pred = InstanceData()
            pred.bboxes = torch.tensor(
                [[b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0]
                 for b, _ in seen], dtype=torch.float32).reshape(-1, 4)
            pred.scores = torch.tensor([s for _, s in seen])
            pred.labels = torch.zeros(len(seen), dtype=torch.int64)
            out.append(pred)
        return out


def test_default_merge_keeps_two_overlapping_cells_of_two_slices():
    image = np.zeros((64, 128, 3), np.uint8)
    image[..., 0], image[..., 1] = np.arange(128), np.arange(64)[:, None]
    assert slice_boxes(64, 128, 64, 0.5) == [
        [0, 0, 64, 64], [32, 0, 96, 64], [64, 0, 128, 64]]
    a = [20., 10., 50., 40.]  # whole in the first slice only
    b = [33., 10., 66., 40.]  # whole in the second only; IoU 0.37, IOS 0.57
    c = [70., 44., 90., 60.]  # whole in the second and the third
    fake = CoordinatePredictor([(a, 0.9), (b, 0.8), (c, 0.7)])
    pred = SlicedPredictor(fake, 64, 0.5).predict([image])[0]
    assert sorted(pred.bboxes.tolist()) == [a, b, c]  # c once
    assert pred.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    # SAHI's default (greedy NMM, IOS >= 0.5) fuses the two cells
    sahi = SlicedPredictor(fake, 64, 0.5, merge='greedynmm',
                           match_metric='IOS').predict([image])[0]
    assert sorted(sahi.bboxes.tolist()) == [[20., 10., 66., 40.], c]


def test_merge_defaults_agree_across_entry_points():
    import argparse
    import inspect

    from rcnn_plugin.apis.slicing import add_slice_args
    from rcnn_plugin.engine.runner.sliced_test_loop import SlicedTestLoop
    params = inspect.signature(SlicedPredictor).parameters
    assert (params['merge'].default, params['match_metric'].default,
            params['match_threshold'].default) == ('nms', 'IOU', 0.5)
    loop = inspect.signature(SlicedTestLoop).parameters
    assert loop['merge'].default == 'nms'
    parser = argparse.ArgumentParser()
    add_slice_args(parser)
    args = parser.parse_args(['--slice', '64'])
    assert (args.slice_merge, args.slice_match) == ('nms', 'IOU')


def test_image_smaller_than_slice_equals_plain_inference(tiny_predictor):
    image = (np.random.RandomState(0).rand(80, 96, 3) * 255).astype(
        np.uint8)
    plain = tiny_predictor.predict([image])[0]
    sliced = SlicedPredictor(tiny_predictor, 512).predict([image])[0]
    assert len(plain) == len(sliced) > 0
    torch.testing.assert_close(sliced.bboxes, plain.bboxes)
    torch.testing.assert_close(sliced.scores, plain.scores)
    assert torch.equal(sliced.labels, plain.labels)


def test_sliced_tiny_model_gives_finite_boxes_in_image(tiny_predictor):
    image = (np.random.RandomState(1).rand(100, 150, 3) * 255).astype(
        np.uint8)
    sliced = SlicedPredictor(tiny_predictor, 64, 0.2, merge='nms',
                             full_image=True, max_per_img=50)
    pred = sliced.predict([image])[0]
    assert 0 < len(pred) <= 50
    boxes = pred.bboxes
    assert torch.isfinite(boxes).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= 150).all() and (boxes[:, 3] <= 100).all()
    assert (boxes[:, 2] > 64).any()  # some come from the right slices
    assert (pred.scores[:-1] >= pred.scores[1:]).all()


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_infer_cli_validates_overlap(capsys):
    infer = _tool('infer')
    cfg = osp.join(REPO, 'configs', 'bccd',
                   'faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
    args = infer.parse_args([cfg, 'none', 'x.jpg', '--slice', '512',
                             '--slice-merge', 'nms', '--slice-full'])
    assert (args.slice, args.overlap, args.slice_merge) == (512, 0.2, 'nms')
    args = infer.parse_args([cfg, 'none', 'x.jpg', '--slice', '512',
                             '--slice-merge', 'greedynmm', '--slice-match',
                             'IOS'])
    assert (args.slice_merge, args.slice_match) == ('greedynmm', 'IOS')
    with pytest.raises(SystemExit):
        infer.parse_args([cfg, 'none', 'x.jpg', '--slice', '512',
                          '--overlap', '1.0'])
    assert '[0, 1)' in capsys.readouterr().err


def test_sliced_test_loop_gives_coco_ap_small(small_config, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(small_config)
    cfg.work_dir = str(tmp_path)
    cfg.test_dataloader.batch_size = 4
    cfg.test_cfg = dict(type='SlicedTestLoop', slice_size=64, overlap=0.2,
                        merge='nms', score_thr=0.05, max_per_img=20)
    cfg.default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
    cfg.custom_hooks = []
    metrics = Runner.from_cfg(cfg).test()
    assert 'coco/bbox_mAP_s' in metrics
    assert -1.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_sliced_loop_finds_the_pipeline_inside_class_wrappers():
    from types import SimpleNamespace

    from rcnn_plugin.engine.runner.sliced_test_loop import _base_dataset
    base = SimpleNamespace(pipeline='p')
    # mmengine wrappers keep the dataset in .dataset, ours in .source
    assert _base_dataset(SimpleNamespace(dataset=base)) is base
    assert _base_dataset(SimpleNamespace(source=base)) is base
    assert _base_dataset(SimpleNamespace(
        dataset=SimpleNamespace(source=base))) is base
    with pytest.raises(TypeError, match='wraps no dataset'):
        _base_dataset(SimpleNamespace())
    # A ConcatDataset has its datasets (it was said to wrap none).
    with pytest.raises(TypeError, match='of 2 datasets.*one at a time'):
        _base_dataset(SimpleNamespace(datasets=[base, base]))


def test_sliced_testing_of_fast_rcnn_is_a_sentence(monkeypatch, capsys):
    # Its pipeline loads proposals the slices do not have: a KeyError
    # on the first batch before.
    from types import SimpleNamespace

    from rcnn_plugin.engine.runner.sliced_test_loop import SlicedTestLoop
    loop = SlicedTestLoop.__new__(SlicedTestLoop)
    loop._runner = SimpleNamespace(model=SimpleNamespace(with_rpn=False))
    with pytest.raises(ValueError, match='no RPN'):
        loop.run()
    test = _tool('test')
    cfg = osp.join(REPO, 'configs', 'fast_rcnn',
                   'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py')
    monkeypatch.setattr('sys.argv', ['test.py', cfg, 'x.pth', '--slice',
                                     '512'])
    with pytest.raises(SystemExit, match='Fast R-CNN needs proposals'):
        test.main()


def test_sliced_test_loop_refuses_fp16():
    from types import SimpleNamespace

    from rcnn_plugin.engine.runner.sliced_test_loop import SlicedTestLoop
    with pytest.raises(ValueError, match='fp16=True would be ignored'):
        SlicedTestLoop(SimpleNamespace(), None, None, fp16=True)
