import torch

from rcnn_plugin.evaluation.functional import gt_instances


def test_splits_kept_and_ignored_instances():
    info = dict(instances=[
        dict(bbox=[0, 0, 10, 10], bbox_label=1, ignore_flag=0),
        dict(bbox=[5, 5, 8, 9], bbox_label=0, ignore_flag=1),
        dict(bbox=[1, 2, 3, 4], bbox_label=2),
    ])
    kept = gt_instances(info, False)
    ignored = gt_instances(info, True)
    assert kept['bboxes'].tolist() == [[0, 0, 10, 10], [1, 2, 3, 4]]
    assert kept['labels'].tolist() == [1, 2]
    assert ignored['bboxes'].tolist() == [[5, 5, 8, 9]]
    assert ignored['labels'].tolist() == [0]
    assert kept['bboxes'].dtype == torch.float32
    assert kept['labels'].dtype == torch.int64


def test_image_without_instances_gives_empty_arrays():
    for info in (dict(instances=[]), dict()):
        out = gt_instances(info, False)
        assert tuple(out['bboxes'].shape) == (0, 4)
        assert tuple(out['labels'].shape) == (0,)
