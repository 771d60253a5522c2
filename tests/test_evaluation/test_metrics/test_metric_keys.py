"""The metric keys every logger and ``save_best='auto'`` can take."""
import re

import pytest
from det_samples import PERFECT, evaluate
from mmdet.registry import METRICS
from mmengine.hooks import CheckpointHook

import rcnn_plugin  # noqa: F401
from rcnn_plugin.evaluation.metrics.pr_curve_metric import class_key

# MLflow's rule for metric names (mmdet issue #10258: a key outside it
# stops the run at the first validation).
MLFLOW_NAME = re.compile(r'^[/\w.\- ]*$')
METRIC_TYPES = ('PRCurveMetric', 'DetectionReport', 'FROCMetric',
                'TIDEMetric', 'ConfusionMatrixMetric')


@pytest.mark.parametrize('kind', METRIC_TYPES)
def test_every_key_is_a_valid_mlflow_name(kind):
    res = evaluate(METRICS.build(dict(type=kind)), PERFECT,
                   classes=('car(parked)+x', 'b:c/d'))
    bad = [key for key in res if not MLFLOW_NAME.match(key)]
    assert res and not bad, bad


def test_class_key_keeps_only_safe_characters():
    assert class_key('car(parked)+x') == 'car_parked__x'
    assert class_key('a b/c:d') == 'a_b_c_d'
    assert class_key('RBC.v2-x') == 'RBC.v2-x'


def test_froc_keys_name_the_rate():
    res = evaluate(METRICS.build(dict(type='FROCMetric',
                                      fp_rates=(0.125, 1, 8))), PERFECT)
    assert list(res) == ['froc/CPM', 'froc/sens_at_0.125fp',
                         'froc/sens_at_1fp', 'froc/sens_at_8fp']


@pytest.mark.parametrize('kind, first', [
    ('PRCurveMetric', 'pr/bbox_mAP'),
    ('DetectionReport', 'report/macro_precision'),
    ('FROCMetric', 'froc/CPM'),
])
def test_the_first_key_is_the_aggregate(kind, first):
    """``save_best='auto'`` and ``monitor='auto'`` follow the first key."""
    res = evaluate(METRICS.build(dict(type=kind)), PERFECT)
    assert next(iter(res)) == first


@pytest.mark.parametrize('kind', ['PRCurveMetric', 'DetectionReport'])
def test_save_best_auto_infers_a_rule(kind):
    res = evaluate(METRICS.build(dict(type=kind)), PERFECT)
    hook = CheckpointHook(interval=1, save_best='auto')
    hook._init_rule(hook.rules, [next(iter(res))])  # as after_val_epoch
    assert hook.rules == ['greater']
