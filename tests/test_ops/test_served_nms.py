"""Served NMS kernels against slow references written from mmcv's loops."""
import importlib
import importlib.util
import math

import numpy as np
import pytest
import torch

import rcnn_plugin.ops  # noqa: F401  (installs the finder before mmcv.ops)

ops = importlib.import_module('mmcv.ops')
# The served kernels, also beside a compiled mmcv (compared with it in
# test_served_integration.py).
pytestmark = pytest.mark.usefixtures('served_ops')


def _iou(a, b, offset):
    f = np.float32
    w = max(f(0), f(min(a[2], b[2]) - max(a[0], b[0]) + offset))
    h = max(f(0), f(min(a[3], b[3]) - max(a[1], b[1]) + offset))
    area_a = f((a[2] - a[0] + offset) * (a[3] - a[1] + offset))
    area_b = f((b[2] - b[0] + offset) * (b[3] - b[1] + offset))
    inter = f(w * h)
    with np.errstate(invalid='ignore', divide='ignore'):
        return f(inter / f(area_a + area_b - inter))


def ref_nms(boxes, scores, thr, offset=0):
    boxes = boxes.float().numpy()
    order = np.argsort(-scores.float().numpy(), kind='stable')
    keep, dropped = [], set()
    for pos, i in enumerate(order):
        if i in dropped:
            continue
        keep.append(int(i))
        for j in order[pos + 1:]:
            if _iou(boxes[i], boxes[j], offset) > np.float32(thr):
                dropped.add(j)
    return keep


def ref_softnms(boxes, scores, thr, sigma, min_score, method, offset):
    """mmcv's softnms_cpu loop, ported statement by statement."""
    f = np.float32
    b = [list(map(f, r)) for r in boxes.numpy()]
    sc = list(map(f, scores.numpy()))
    inds = list(range(len(b)))
    dets, n, i = [], len(b), 0
    while i < n:
        best = max(range(i, n), key=lambda k: (sc[k], -k))
        for arr in (b, sc, inds):
            arr[i], arr[best] = arr[best], arr[i]
        dets.append(b[i] + [sc[i]])
        pos = i + 1
        while pos < n:
            ovr = _iou(b[i], b[pos], offset)
            weight = f(1)
            if method == 0 and ovr >= f(thr):
                weight = f(0)
            elif method == 1 and ovr >= f(thr):
                weight = f(1) - ovr
            elif method == 2:
                weight = f(math.exp(-(ovr * ovr) / f(sigma)))
            sc[pos] = f(sc[pos] * weight)
            if sc[pos] < f(min_score):
                for arr in (b, sc, inds):
                    arr[pos] = arr[n - 1]
                n -= 1
                pos -= 1
            pos += 1
        i += 1
    return np.array(dets, dtype=np.float32).reshape(-1, 5), inds[:n]


def ref_nms_match(dets, thr):
    d = dets.numpy()
    order = np.argsort(-d[:, 4], kind='stable')
    suppressed, groups = set(), []
    for pos, i in enumerate(order):
        if i in suppressed:
            continue
        group = [int(i)]
        for j in order[pos + 1:]:
            if j not in suppressed and _iou(d[i], d[j], 0) >= np.float32(thr):
                suppressed.add(j)
                group.append(int(j))
        groups.append(group)
    return groups


def random_boxes(n, seed, size=40.0):
    """Random boxes: some overlapping, zero-width and out of the image."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size - 5
    wh = torch.rand(n, 2, generator=g) * size / 2
    boxes = torch.cat([xy, xy + wh], 1)
    if n >= 4:
        boxes[0, 2] = boxes[0, 0]  # zero width
        boxes[1] = boxes[2] + 0.5  # near duplicate
        boxes[3] = torch.tensor([-30.0, -20.0, -2.0, 5.0])  # off-image
    scores = torch.rand(n, generator=g)
    return boxes, scores


@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_nms_matches_greedy_reference(seed, offset):
    boxes, scores = random_boxes(60, seed)
    dets, keep = ops.nms(boxes, scores, 0.3, offset=offset)
    assert keep.tolist() == ref_nms(boxes, scores, 0.3, offset)
    torch.testing.assert_close(dets[:, :4], boxes[keep])
    # numpy in, numpy out; score threshold and max_num
    dets_np, keep_np = ops.nms(boxes.numpy(), scores.numpy(), 0.3,
                               offset=offset, score_threshold=0.2, max_num=5)
    assert isinstance(keep_np, np.ndarray)
    ok = scores > 0.2
    want = torch.nonzero(ok)[:, 0][ref_nms(boxes[ok], scores[ok], 0.3,
                                           offset)][:5]
    assert keep_np.tolist() == want.tolist()


def test_nms_bfloat16_and_empty():
    boxes, scores = random_boxes(40, 3)
    b16, s16 = boxes.bfloat16(), scores.bfloat16()
    dets, keep = ops.nms(b16, s16, 0.5)
    assert dets.dtype == torch.bfloat16
    want = ref_nms(b16.float(), s16.float(), 0.5)
    assert keep.tolist() == want
    dets, keep = ops.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert dets.shape == (0, 5) and keep.shape == (0, )


def test_batched_nms_per_class():
    boxes, scores = random_boxes(50, 4)
    idxs = torch.arange(50) % 3
    dets, keep = ops.batched_nms(boxes, scores, idxs,
                                 dict(type='nms', iou_threshold=0.4))
    want = []
    for c in range(3):
        sel = torch.nonzero(idxs == c)[:, 0]
        want += sel[ref_nms(boxes[sel], scores[sel], 0.4)].tolist()
    assert sorted(keep.tolist()) == sorted(want)
    assert (dets[:-1, 4] >= dets[1:, 4]).all()
    torch.testing.assert_close(dets[:, :4], boxes[keep])


@pytest.mark.parametrize('method', ['naive', 'linear', 'gaussian'])
@pytest.mark.parametrize('offset', [0, 1])
def test_soft_nms_matches_mmcv_loop(method, offset):
    boxes, scores = random_boxes(40, 5)
    scores[7] = scores[9]  # a tie
    min_score = 0.05
    dets, keep = ops.soft_nms(boxes, scores, 0.3, sigma=0.5,
                              min_score=min_score, method=method,
                              offset=offset)
    code = {'naive': 0, 'linear': 1, 'gaussian': 2}[method]
    want_dets, want_keep = ref_softnms(boxes, scores, 0.3, 0.5, min_score,
                                       code, offset)
    assert keep.tolist() == want_keep
    np.testing.assert_allclose(dets.numpy(), want_dets, rtol=1e-6,
                               atol=1e-7)


def test_soft_nms_empty_and_numpy():
    dets, keep = ops.soft_nms(np.zeros((0, 4), np.float32),
                              np.zeros(0, np.float32))
    assert dets.shape == (0, 5) and keep.shape == (0, )
    boxes, scores = random_boxes(10, 6)
    dets, keep = ops.soft_nms(boxes.numpy(), scores.numpy(), 0.5)
    assert isinstance(dets, np.ndarray) and len(dets) == len(keep)


@pytest.mark.parametrize('thr', [0.1, 0.5])
def test_nms_match_groups(thr):
    boxes, scores = random_boxes(40, 7)
    dets = torch.cat([boxes, scores[:, None]], 1)
    groups = ops.nms_match(dets, thr)
    assert [g.tolist() for g in groups] == ref_nms_match(dets, thr)
    assert all(g.dtype == torch.long for g in groups)
    groups_np = ops.nms_match(dets.numpy(), thr)
    assert [g.tolist() for g in groups_np] == ref_nms_match(dets, thr)
    assert ops.nms_match(torch.zeros(0, 5), thr) == []


def test_soft_nms_tie_order_follows_mmcv_slot_swaps():
    # Boxes 1-3 duplicate box 0 and are dropped; mmcv fills their slots
    # with the last boxes, so among the equal scores 9, 8, 7 come first.
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 4 +
                         [[20.0 * k, 0, 20 * k + 5, 5] for k in range(1, 7)])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6] + [0.5] * 6)
    dets, keep = ops.soft_nms(boxes, scores, 0.5, method='naive')
    assert keep.tolist() == [0, 9, 8, 7, 4, 5, 6]
    assert keep.tolist() == ref_softnms(boxes, scores, 0.5, 0.5, 1e-3, 0,
                                        0)[1]
    torch.testing.assert_close(dets[:, 4], scores[keep])
