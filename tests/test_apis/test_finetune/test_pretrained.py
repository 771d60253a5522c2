"""--from: a detector checkpoint re-targeted to the data's classes."""
import pytest
import torch

from rcnn_plugin.apis.finetune import retarget_checkpoint


def _detector_sd(num_classes, dim=8):
    return {
        'backbone.conv1.weight': torch.randn(4, 3, 3, 3),
        'roi_head.bbox_head.fc_cls.weight': torch.randn(num_classes + 1, dim),
        'roi_head.bbox_head.fc_cls.bias': torch.randn(num_classes + 1),
        'roi_head.bbox_head.fc_reg.weight': torch.randn(4 * num_classes, dim),
        'roi_head.bbox_head.fc_reg.bias': torch.randn(4 * num_classes),
    }


def test_named_classes_keep_their_rows(tmp_path):
    sd = _detector_sd(3)
    src = tmp_path / 'src.pth'
    torch.save({'meta': {'dataset_meta': {'classes': ('a', 'b', 'c')}},
                'state_dict': sd}, src)
    dst = tmp_path / 'dst.pth'
    lines = retarget_checkpoint(str(src), ['c', 'new'], str(dst))
    assert lines == ['c: c', 'new: new rows (mmdet init)']
    out = torch.load(dst, weights_only=True)
    cls = out['state_dict']['roi_head.bbox_head.fc_cls.weight']
    assert cls.shape == (3, 8)  # 2 classes + background
    assert torch.equal(cls[0], sd['roi_head.bbox_head.fc_cls.weight'][2])
    assert torch.equal(cls[2], sd['roi_head.bbox_head.fc_cls.weight'][3])
    assert out['meta']['dataset_meta']['classes'] == ('c', 'new')
    assert torch.equal(out['state_dict']['backbone.conv1.weight'],
                       sd['backbone.conv1.weight'])


def test_unnamed_classes_start_fresh(tmp_path):
    src = tmp_path / 'src.pth'
    torch.save({'state_dict': _detector_sd(5)}, src)
    lines = retarget_checkpoint(str(src), ['x'], str(tmp_path / 'd.pth'))
    assert lines == ['x: new rows (mmdet init; the checkpoint records no '
                     'class names to match)']
    out = torch.load(tmp_path / 'd.pth', weights_only=True)
    assert out['state_dict']['roi_head.bbox_head.fc_reg.weight'].shape == (
        4, 8)


def test_names_that_differ_in_case_or_separators_keep_their_rows(tmp_path):
    # 'Person' (data.yaml) and 'person' (the checkpoint) started fresh
    src = tmp_path / 'src.pth'
    torch.save({'meta': {'dataset_meta': {'classes': (
        'person', 'traffic_light', 'a', 'A')}},
        'state_dict': _detector_sd(4)}, src)
    lines = retarget_checkpoint(str(src), ['Person', 'traffic light', 'a_'],
                                str(tmp_path / 'd.pth'))
    # 'a_' folds to 'a' as both 'a' and 'A' do: ambiguous, fresh rows
    assert lines == ['Person: person', 'traffic light: traffic_light',
                     'a_: new rows (mmdet init)']
    # two targets folding to one source name: neither takes its rows
    lines = retarget_checkpoint(str(src), ['Traffic light', 'traffic-light'],
                                str(tmp_path / 'd.pth'))
    assert lines == ['Traffic light: new rows (mmdet init)',
                     'traffic-light: new rows (mmdet init)']


def test_backbone_checkpoint_is_refused_naming_what_it_holds(tmp_path):
    src = tmp_path / 'mobilenet.pth'
    torch.save({'features.0.weight': torch.zeros(2),
                'classifier.1.weight': torch.zeros(2)}, src)
    with pytest.raises(ValueError) as err:
        retarget_checkpoint(str(src), ['x'], str(tmp_path / 'd.pth'))
    msg = str(err.value)
    assert 'not an R-CNN detector checkpoint' in msg
    assert '[classifier, features]' in msg
    assert not (tmp_path / 'd.pth').exists()


def test_one_class_agnostic_regression_is_kept_when_named(tmp_path):
    sd = _detector_sd(1)  # fc_reg: 4 rows, specific or agnostic alike
    src = tmp_path / 'src.pth'
    torch.save({'meta': {'dataset_meta': {'classes': ('a', )}},
                'state_dict': sd}, src)
    key = 'roi_head.bbox_head.fc_reg.weight'
    retarget_checkpoint(str(src), ['a', 'b', 'c'], str(tmp_path / 's.pth'))
    assert torch.load(tmp_path / 's.pth', weights_only=True)[
        'state_dict'][key].shape == (12, 8)
    retarget_checkpoint(str(src), ['a', 'b', 'c'], str(tmp_path / 'g.pth'),
                        class_agnostic=['roi_head.bbox_head.fc_reg'])
    out = torch.load(tmp_path / 'g.pth', weights_only=True)['state_dict']
    assert torch.equal(out[key], sd[key])
    assert out['roi_head.bbox_head.fc_cls.weight'].shape == (4, 8)
