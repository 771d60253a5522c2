"""Saliency on a synthetic image with one object and stub detectors that
see only that object: every method's map peaks inside its box."""
import numpy as np
import pytest
import torch
from torch import nn

from rcnn_plugin.apis.explain import DetectionTarget, drise
from rcnn_plugin.apis.explain.cam import build_cam, multi_level
from rcnn_plugin.evaluation.faithfulness import box_mask

BOX = torch.tensor([40., 16., 56., 32.])  # x1, y1, x2, y2


def _image():
    x = torch.zeros(1, 3, 64, 64)
    x[:, :, 16:32, 40:56] = 255.0  # the object, exactly the box
    return x


def _detect(x):
    """One detection at BOX; its score is the box's brightness."""
    score = x[:, :, 16:32, 40:56].mean(dim=(1, 2, 3)) / 255.0
    return [dict(boxes=BOX[None].clone(), scores=s.reshape(1),
                 labels=torch.zeros(1, dtype=torch.long)) for s in score]


class StubDetector(nn.Module):
    """A 1x1 conv 'backbone'; the score pools its output in BOX only."""

    def __init__(self):
        super().__init__()
        self.feat = nn.Conv2d(3, 4, 1)
        nn.init.constant_(self.feat.weight, 0.01)
        nn.init.zeros_(self.feat.bias)

    def forward(self, x):
        f = self.feat(x)
        scores = f[:, :, 16:32, 40:56].mean(dim=(1, 2, 3)).sigmoid()
        return [dict(boxes=BOX[None].clone(), scores=s.reshape(1),
                     labels=torch.zeros(1, dtype=torch.long))
                for s in scores]


def test_drise_peaks_inside_the_box():
    sal = drise(_detect, _image(), (64, 64), BOX[None], torch.tensor([0]),
                torch.zeros(3, 1, 1), num_masks=200, grid=8, seed=0)
    sal = sal[0].numpy()
    inside = box_mask((64, 64), BOX.tolist())
    assert np.unravel_index(sal.argmax(), sal.shape) in set(
        zip(*np.nonzero(inside)))
    # Outside the box a pixel is independent of the score: only the
    # baseline (mean score) remains there.
    assert sal[inside].mean() > sal[~inside].mean() + 0.03


def test_drise_is_seeded_and_refuses_no_masks():
    args = (_detect, _image(), (64, 64), BOX[None], torch.tensor([0]),
            torch.zeros(3, 1, 1))
    a = drise(*args, num_masks=16, seed=3)
    assert torch.equal(a, drise(*args, num_masks=16, seed=3))
    assert not torch.equal(a, drise(*args, num_masks=16, seed=4))
    with pytest.raises(ValueError, match='mask budget > 0'):
        drise(*args, num_masks=0)


@pytest.mark.parametrize('method', ['gradcam', 'odam', 'eigencam'])
def test_cam_methods_peak_inside_the_box(method):
    model = StubDetector()
    x = _image()
    x[:, :, 50:60, 5:15] = 128.0  # a second, dimmer thing outside
    cam = build_cam(method, model, model.feat)
    try:
        with torch.enable_grad():
            sal = cam(x, [DetectionTarget(BOX, 0)])[0]
    finally:
        cam.release()
    inside = box_mask((64, 64), BOX.tolist())
    assert sal.shape == (64, 64) and np.isfinite(sal).all()
    assert inside[np.unravel_index(sal.argmax(), sal.shape)]
    if method == 'odam':  # element-wise: only where the gradient is
        assert sal[~inside].max() < 0.05
    else:  # channel weights x activations: the dimmer thing shows too
        assert sal[~inside].max() < 0.9


def test_target_without_match_gives_zero_not_an_error():
    dets = _detect(_image())[0]
    dets['scores'].requires_grad_(True)
    far = DetectionTarget(torch.tensor([0., 0., 4., 4.]), 0)(dets)
    assert float(far) == 0.0 and far.requires_grad
    other_class = DetectionTarget(BOX, 1)(dets)
    assert float(other_class) == 0.0
    assert float(DetectionTarget(BOX, 0, use_iou=False)(dets)) == float(
        dets['scores'][0])


def test_multi_level_reshape_keeps_the_stride_8_level():
    levels = [torch.ones(1, 2, 32, 32), torch.ones(1, 3, 16, 16),
              torch.ones(1, 4, 8, 8)]
    out = multi_level(levels, 8, (128, 128))
    assert out.shape == (1, 9, 16, 16)
