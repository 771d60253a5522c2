"""The export's self-check compares unrounded detections."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugin.apis import instances_to_dicts, predict_dicts, self_check


class BoxPredictor:
    """One detection ``box`` with ``score`` (label 0) on every image."""

    backend = 'fake'

    def __init__(self, box, score):
        self.box, self.score = box, score

    def predict(self, images):
        out = []
        for _ in images:
            pred = InstanceData()
            pred.bboxes = torch.tensor([self.box], dtype=torch.float32)
            pred.scores = torch.tensor([self.score], dtype=torch.float32)
            pred.labels = torch.tensor([0])
            out.append(pred)
        return out


IMAGES = [np.zeros((8, 8, 3), np.uint8)]


def test_self_check_reports_differences_below_the_json_rounding():
    ref = predict_dicts(BoxPredictor([10., 10., 50., 50.], 0.5), IMAGES)
    other = BoxPredictor([10.004, 10., 50., 50.], 0.500004)
    report = self_check(ref, other, IMAGES, min_match=1.0)
    # float32 values: 10.004 -> 10.0039997, 0.500004 -> 0.50000399
    assert report['max_box_diff'] == pytest.approx(0.004, abs=1e-5)
    assert report['max_score_diff'] == pytest.approx(4e-6, abs=1e-7)


def test_self_check_does_not_round_a_match_into_a_mismatch():
    # |score difference| 0.0009994 < 1e-3 matches; rounded to 1e-5 the
    # scores would be 0.5 and 0.501, 1e-3 apart: no match.
    ref = predict_dicts(BoxPredictor([10., 10., 50., 50.], 0.4999961),
                        IMAGES)
    other = BoxPredictor([10., 10., 50., 50.], 0.5009955)
    report = self_check(ref, other, IMAGES, min_match=1.0)
    assert report['per_image'] == [1.0]
    assert report['max_score_diff'] == pytest.approx(9.994e-4, abs=1e-7)


class NothingPredictor(BoxPredictor):
    """Detects nothing on any image."""

    def predict(self, images):
        return [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                             labels=torch.zeros(0, dtype=torch.long))
                for _ in images]


def test_a_check_where_nothing_was_detected_fails():
    nothing = NothingPredictor(None, None)
    ref = predict_dicts(nothing, IMAGES * 2)
    with pytest.raises(RuntimeError, match=r'neither PyTorch nor fake '
                       r'detected anything on the 2 check image\(s\)'):
        self_check(ref, nothing, IMAGES * 2)
    # One image with detections is a check; the empty one matches trivially.
    one = predict_dicts(BoxPredictor([10., 10., 50., 50.], 0.5), IMAGES)
    report = self_check(one + ref[:1], SometimesPredictor(), IMAGES * 2)
    assert (report['images'], report['images_with_detections']) == (2, 1)


class SometimesPredictor(BoxPredictor):
    """The box on the first image it is given, nothing afterwards."""

    def __init__(self):
        super().__init__([10., 10., 50., 50.], 0.5)
        self.seen = 0

    def predict(self, images):
        out = [super(SometimesPredictor, self).predict([image])[0]
               if self.seen + i == 0 else
               NothingPredictor(None, None).predict([image])[0]
               for i, image in enumerate(images)]
        self.seen += len(images)
        return out


def test_instances_to_dicts_rounds_for_json_unless_precise():
    pred = BoxPredictor([10.004, 10., 50.123456, 50.], 0.5000041).predict(
        IMAGES)[0]
    rounded = instances_to_dicts(pred)[0]
    assert rounded['bbox_xyxy'] == [10.0, 10.0, 50.12, 50.0]
    assert rounded['score'] == 0.5
    precise = instances_to_dicts(pred, precise=True)[0]
    assert precise['bbox_xyxy'][0] == pytest.approx(10.004, abs=1e-6)
    assert precise['score'] == pytest.approx(0.5000041, abs=1e-7)
