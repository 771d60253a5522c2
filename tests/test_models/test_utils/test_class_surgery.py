"""Class surgery keeps the logits and deltas of mapped classes."""
import pytest
import torch
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.models.roi_heads.mask_heads import FCNMaskHead

from rcnn_plugin.models.utils import (
    build_class_mapping,
    find_class_heads,
    remap_rows,
    remap_state_dict,
)

SRC = ['person', 'car', 'truck', 'bus', 'dog']
DST = ['pedestrian', 'car', 'vehicle', 'sign']
MAP = {'pedestrian': ['person'], 'vehicle': ['car', 'truck', 'bus']}
# pedestrian <- person, car <- car (same name), vehicle <- mean, sign: new
SOURCES = [[0], [1], [1, 2, 3], []]


def _bbox_head(num_classes, **kwargs):
    torch.manual_seed(num_classes)
    head = Shared2FCBBoxHead(in_channels=8, fc_out_channels=16,
                             roi_feat_size=3, num_classes=num_classes,
                             **kwargs)
    head.init_weights()
    for p in head.parameters():  # non-trivial biases too
        p.data.add_(torch.randn_like(p) * 0.1)
    return head.eval()


def _prefixed(module, prefix):
    return {prefix + k: v for k, v in module.state_dict().items()}


def _unprefixed(state_dict, prefix):
    return {k[len(prefix):]: v for k, v in state_dict.items()
            if k.startswith(prefix)}


def test_build_class_mapping():
    assert build_class_mapping(SRC, DST, MAP) == SOURCES
    assert build_class_mapping(SRC, DST, MAP, match_names=False)[1] == []
    assert build_class_mapping(SRC, []) == []


@pytest.mark.parametrize('mapping,match', [
    ({'pedestrian': ['human']}, r"source classes \['human'\]"),
    ({'cyclist': ['person']}, r"target classes \['cyclist'\]"),
])
def test_mapping_names_absent_class(mapping, match):
    with pytest.raises(ValueError, match=match):
        build_class_mapping(SRC, DST, mapping)


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="duplicate target.*'car'"):
        build_class_mapping(SRC, ['car', 'car'])


@pytest.mark.parametrize('agnostic', [False, True])
def test_bbox_logits_and_deltas_kept(agnostic):
    src = _bbox_head(len(SRC), reg_class_agnostic=agnostic)
    prefix = 'roi_head.bbox_head.'
    new = remap_state_dict(_prefixed(src, prefix), len(SRC), SOURCES)
    dst = _bbox_head(len(DST), reg_class_agnostic=agnostic)
    dst.load_state_dict(_unprefixed(new, prefix), strict=True)
    feats = torch.randn(6, 8, 3, 3)  # 6 RoIs
    with torch.no_grad():
        cls_s, reg_s = src(feats)
        cls_d, reg_d = dst(feats)
    assert cls_d.shape == (6, len(DST) + 1)
    for t, s in ((0, 0), (1, 1), (4, 5)):  # 4/5: background stays last
        torch.testing.assert_close(cls_d[:, t], cls_s[:, s])
    # Averaged rows give the mean logit (the head's last layer is linear).
    torch.testing.assert_close(cls_d[:, 2], cls_s[:, 1:4].mean(1))
    if agnostic:
        torch.testing.assert_close(reg_d, reg_s)
        return
    reg_s, reg_d = reg_s.view(6, -1, 4), reg_d.view(6, -1, 4)
    torch.testing.assert_close(reg_d[:, :2], reg_s[:, :2])
    torch.testing.assert_close(reg_d[:, 2], reg_s[:, 1:4].mean(1))


def test_fresh_rows_follow_mmdet_init():
    weight = torch.randn(3, 4000)
    out = remap_rows(weight, [[], [2], []], std=0.01,
                     generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[1], weight[2])
    assert abs(out[[0, 2]].std().item() - 0.01) < 0.001
    assert abs(out[[0, 2]].mean().item()) < 0.001
    bias = remap_rows(torch.ones(12), [[], [2]], block=4)
    assert bias.tolist() == [0.0] * 4 + [1.0] * 4


def test_prototypes_replace_rows():
    weight = torch.randn(4, 5)
    proto = torch.full((5, ), 7.0)
    out = remap_rows(weight, [[0], [1], []], prototypes={2: proto, 0: proto})
    assert torch.equal(out[0], proto) and torch.equal(out[2], proto)
    assert torch.equal(out[1], weight[1])
    with pytest.raises(ValueError, match='out of range'):
        remap_rows(weight, [[9]])


def test_state_dict_prototypes_and_missing_bias():
    # A cosine classifier (issue 8) has no fc_cls bias and no regression.
    sd = {'roi_head.bbox_head.fc_cls.weight': torch.randn(len(SRC) + 1, 6)}
    proto = {'roi_head.bbox_head.fc_cls.weight': {3: torch.ones(6)}}
    new = remap_state_dict(sd, len(SRC), SOURCES, prototypes=proto)
    weight = new['roi_head.bbox_head.fc_cls.weight']
    assert weight.shape == (len(DST) + 1, 6)
    assert torch.equal(weight[3], torch.ones(6))
    assert torch.equal(weight[-1], sd['roi_head.bbox_head.fc_cls.weight'][-1])
    assert 'roi_head.bbox_head.fc_cls.bias' not in new


def test_sigmoid_classifier_has_no_background_row():
    sd = {'roi_head.bbox_head.fc_cls.weight': torch.randn(len(SRC), 6)}
    new = remap_state_dict(sd, len(SRC), SOURCES)
    assert new['roi_head.bbox_head.fc_cls.weight'].shape == (len(DST), 6)


@pytest.mark.parametrize('agnostic', [False, True])
def test_mask_logits_kept(agnostic):
    def head(n):
        torch.manual_seed(n)
        m = FCNMaskHead(num_convs=1, in_channels=8, conv_out_channels=8,
                        num_classes=n, class_agnostic=agnostic)
        m.init_weights()
        m.conv_logits.bias.data.normal_()
        return m.eval()
    src, dst = head(len(SRC)), head(len(DST))
    sd = {**_prefixed(_bbox_head(len(SRC)), 'roi_head.bbox_head.'),
          **_prefixed(src, 'roi_head.mask_head.')}
    new = remap_state_dict(sd, len(SRC), SOURCES)
    dst.load_state_dict(_unprefixed(new, 'roi_head.mask_head.'), strict=True)
    feats = torch.randn(3, 8, 4, 4)
    with torch.no_grad():
        out_s, out_d = src(feats), dst(feats)
    if agnostic:
        torch.testing.assert_close(out_d, out_s)
        return
    torch.testing.assert_close(out_d[:, :2], out_s[:, :2])
    torch.testing.assert_close(out_d[:, 2], out_s[:, 1:4].mean(1))
    # fresh row: Kaiming normal, fan_out over the 4 target classes, bias 0
    assert new['roi_head.mask_head.conv_logits.bias'][3] == 0


def test_cascade_stages_are_all_found():
    sd = {f'roi_head.bbox_head.{i}.fc_cls.weight': torch.zeros(6, 2)
          for i in range(3)}
    sd['roi_head.mask_head.0.conv_logits.weight'] = torch.zeros(5, 2, 1, 1)
    bbox, mask = find_class_heads(sd)
    assert len(bbox) == 3 and mask == ['roi_head.mask_head.0.']
    new = remap_state_dict(sd, len(SRC), SOURCES)
    assert all(new[f'roi_head.bbox_head.{i}.fc_cls.weight'].shape[0] == 5
               for i in range(3))


def test_unsupported_architecture_lists_supported():
    sd = {'bbox_head.retina_cls.weight': torch.zeros(9, 4, 3, 3)}
    with pytest.raises(ValueError, match='Supported: Faster R-CNN.*Mask'):
        remap_state_dict(sd, 1, [[0]])


def test_row_count_that_does_not_fit_is_refused():
    sd = {'roi_head.bbox_head.fc_cls.weight': torch.zeros(81, 4)}
    with pytest.raises(ValueError, match='has 81 rows; with 5 source'):
        remap_state_dict(sd, len(SRC), SOURCES)
    sd = {'roi_head.bbox_head.fc_cls.weight': torch.zeros(6, 4),
          'roi_head.bbox_head.fc_reg.weight': torch.zeros(8, 4)}
    with pytest.raises(ValueError, match='fc_reg.weight has 8 rows'):
        remap_state_dict(sd, len(SRC), SOURCES)


def test_one_source_class_agnostic_layers_named_by_the_caller():
    """With one source class a class-agnostic regressor (4 rows) and mask
    layer (1 channel) look class-specific; named, they are kept as are."""
    sd = {'roi_head.bbox_head.fc_cls.weight': torch.randn(2, 4),
          'roi_head.bbox_head.fc_reg.weight': torch.randn(4, 4),
          'roi_head.mask_head.conv_logits.weight': torch.randn(1, 2, 1, 1)}
    grown = remap_state_dict(sd, 1, [[0], []])
    assert grown['roi_head.bbox_head.fc_reg.weight'].shape[0] == 8
    assert grown['roi_head.mask_head.conv_logits.weight'].shape[0] == 2
    kept = remap_state_dict(sd, 1, [[0], []], class_agnostic=[
        'roi_head.bbox_head.fc_reg', 'roi_head.mask_head.conv_logits'])
    assert kept['roi_head.bbox_head.fc_cls.weight'].shape[0] == 3
    for key in ('roi_head.bbox_head.fc_reg.weight',
                'roi_head.mask_head.conv_logits.weight'):
        assert torch.equal(kept[key], sd[key])
