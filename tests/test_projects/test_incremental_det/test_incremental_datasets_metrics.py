"""NewClassDataset (labels of a step) and IncrementalVOCMetric."""
import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset
from mmengine.structures import InstanceData

from projects.IncrementalDet.incremental_det import (
    IncrementalVOCMetric,
    NewClassDataset,
)


class _Cells(BaseDataset):
    METAINFO = dict(classes=('RBC', 'WBC', 'Platelets'))

    def load_data_list(self):
        def inst(label):
            return dict(bbox=[0, 0, 10, 10], bbox_label=label, ignore_flag=0)
        return [dict(img_id=0, instances=[inst(0), inst(1), inst(2)]),
                dict(img_id=1, instances=[inst(0)])]


def test_new_class_dataset_drops_old_labels_with_a_count():
    ds = NewClassDataset(_Cells(), old_classes=('RBC', ),
                         new_classes=('Platelets', 'WBC'),
                         on_old_labels='warn')
    assert ds.metainfo['classes'] == ('RBC', 'Platelets', 'WBC')
    assert ds.num_old_labels == 2
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == \
        [2, 1]
    # image 1 showed only an RBC: no new class left, so it is dropped
    assert len(ds) == 1 and ds.num_dropped_images == 1
    kept = NewClassDataset(_Cells(), old_classes=('RBC', ),
                           new_classes=('Platelets', 'WBC'),
                           on_old_labels='warn',
                           drop_images_without_new=False)
    assert len(kept) == 2 and kept.num_dropped_images == 0
    assert kept.get_data_info(1)['instances'] == []


def test_new_class_dataset_bad_input():
    with pytest.raises(ValueError, match='2 instances of the old classes'):
        NewClassDataset(_Cells(), old_classes=('RBC', ),
                        new_classes=('WBC', 'Platelets'))
    with pytest.raises(ValueError, match='collide'):
        NewClassDataset(_Cells(), old_classes=('RBC', ),
                        new_classes=('RBC', 'WBC'))


class _NoPlatelets(_Cells):
    def load_data_list(self):
        return [dict(img_id=0, instances=[
            dict(bbox=[0, 0, 10, 10], bbox_label=1, ignore_flag=0)])]


def test_a_new_class_without_an_instance_is_an_error():
    # a step that adds a class its data never shows trained a head row on
    # background only; before, one INFO line said so
    with pytest.raises(ValueError, match=r"new class\(es\) \['Platelets'\] "
                       r'have no instance.*1 images kept of 1'):
        NewClassDataset(_NoPlatelets(), old_classes=('RBC', ),
                        new_classes=('WBC', 'Platelets'))


def _sample(boxes, labels):
    pred = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float),
                        labels=torch.tensor(labels),
                        scores=torch.full((len(labels), ), 0.9))
    gt = InstanceData(bboxes=pred.bboxes.clone(), labels=pred.labels.clone())
    ignored = InstanceData(bboxes=torch.zeros(0, 4),
                           labels=torch.zeros(0, dtype=torch.long))
    return dict(pred_instances=pred, gt_instances=gt,
                ignored_instances=ignored)


def test_metric_splits_old_new_all_and_forgetting():
    metric = IncrementalVOCMetric(old_classes=('RBC', ),
                                  reference_old_ap50=1.0)
    metric.dataset_meta = dict(classes=('RBC', 'WBC', 'Platelets'))
    # RBC and WBC found; no platelet in the split (skipped, as eval_map)
    good = _sample([[0, 0, 20, 20], [40, 40, 80, 80]], [0, 1])
    metric.process({}, [good])
    res = metric.compute_metrics(metric.results)
    assert res['old_AP50'] == res['new_AP50'] == res['all_AP50'] == 1.0
    assert res['forgetting'] == 0.0
    assert 'AP50_Platelets' not in res
    metric.results.clear()
    miss = _sample([[0, 0, 20, 20], [40, 40, 80, 80]], [0, 1])
    # the RBC is missed, the WBC found
    miss['pred_instances'] = miss['pred_instances'][1:]
    metric.process({}, [miss])
    res = metric.compute_metrics(metric.results)
    assert res['old_AP50'] == 0.0 and res['forgetting'] == 1.0
    assert np.isclose(res['all_AP50'], 0.5)


def test_metric_of_an_empty_split_is_a_sentence():
    metric = IncrementalVOCMetric(old_classes=('RBC', ))
    metric.dataset_meta = dict(classes=('RBC', 'WBC'))
    with pytest.raises(ValueError, match='no image was evaluated'):
        metric.compute_metrics([])  # was: "not enough values to unpack"


@pytest.mark.parametrize('kwargs', [dict(scale_ranges=[(0, 32**2)]),
                                    dict(iou_thrs=[0.5, 0.75]),
                                    dict(metric='recall')])
def test_metric_refuses_the_vocmetric_options_it_fixes(kwargs):
    # scale_ranges was accepted and ignored; the others were a TypeError
    key, = kwargs
    with pytest.raises(ValueError, match=f'does not take .*{key}'):
        IncrementalVOCMetric(old_classes=('RBC', ), **kwargs)


@pytest.mark.parametrize('ref', [84.7, -0.1, '0.8'])
def test_reference_old_ap50_must_be_a_fraction(ref):
    # 84.7 (a percentage from results.md) gave a forgetting near 84
    with pytest.raises(ValueError, match='reference_old_ap50 must be a '
                       r'fraction in \[0, 1\]'):
        IncrementalVOCMetric(old_classes=('RBC', ), reference_old_ap50=ref)


def test_metric_with_an_image_without_gt_and_one_without_predictions():
    metric = IncrementalVOCMetric(old_classes=('RBC', ),
                                  reference_old_ap50=1.0)
    metric.dataset_meta = dict(classes=('RBC', 'WBC'))
    found = _sample([[0, 0, 20, 20], [40, 40, 80, 80]], [0, 1])
    blank = _sample([[5, 5, 25, 25]], [0])  # a false RBC, no GT
    blank['gt_instances'] = blank['gt_instances'][:0]
    blank['pred_instances'].scores[:] = 0.95  # ranked above the hit
    silent = _sample([[0, 0, 20, 20]], [1])  # a WBC, nothing predicted
    silent['pred_instances'] = silent['pred_instances'][:0]
    metric.process({}, [found, blank, silent])
    res = metric.compute_metrics(metric.results)
    # RBC: a false positive ranked above the one hit (precision 0.5 at
    # recall 1); WBC: 1 of 2 found
    assert np.isclose(res['old_AP50'], 0.5)
    assert np.isclose(res['new_AP50'], 0.5)
    assert np.isclose(res['forgetting'], 0.5)
    assert all(np.isfinite(v) for v in res.values())
