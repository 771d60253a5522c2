"""Every metric of the plugin on an empty split and on a split without
any ground truth: defined values or a sentence, never a crash or a NaN.

mmengine's ``BaseMetric.evaluate`` only warns about empty results and then
calls ``compute_metrics([])``."""
import math

import pytest
from det_samples import CLASSES, A, sample
from mmdet.registry import METRICS

import rcnn_plugin  # noqa: F401

NAMES = ('PRCurveMetric', 'ConfusionMatrixMetric', 'FROCMetric',
         'TIDEMetric', 'DetectionReport')


def _finite(out: dict) -> None:
    assert any(isinstance(v, float) for v in out.values()), out  # not {}
    for key, value in out.items():
        if isinstance(value, float):
            assert not math.isnan(value), key


@pytest.mark.parametrize('name', NAMES)
def test_an_empty_split_is_defined_or_a_sentence(name, tmp_path):
    kwargs = dict(out_dir=str(tmp_path)) if name == 'TIDEMetric' else {}
    metric = METRICS.build(dict(type=name, **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    try:
        out = metric.compute_metrics([])
    except ValueError as err:
        assert 'image' in str(err)  # a sentence about the split
    else:
        _finite(out)


@pytest.mark.parametrize('name', NAMES)
def test_a_split_without_ground_truth(name, tmp_path):
    kwargs = dict(out_dir=str(tmp_path)) if name == 'TIDEMetric' else {}
    metric = METRICS.build(dict(type=name, **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [sample(0, pred=[(A, 0, 0.9)]), sample(1)])
    _finite(metric.evaluate(2))


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('where', ['pred', 'gt'])
def test_a_label_outside_the_classes_is_a_sentence(name, where, tmp_path):
    # Label len(classes) was the confusion matrix's background column, and
    # the per-class loops never counted it (predictions of another model).
    kwargs = dict(out_dir=str(tmp_path)) if name == 'TIDEMetric' else {}
    metric = METRICS.build(dict(type=name, **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    bad = len(CLASSES)
    item = sample(0, gt=[(A, bad if where == 'gt' else 0)],
                  pred=[(A, bad if where == 'pred' else 0, 0.9)])
    with pytest.raises(ValueError, match=f'image 0.png has .* label {bad}, '
                       f'but the dataset has {bad} classes'):
        metric.process({}, [item])
    metric.process({}, [sample(0, gt=[(A, 0)], pred=[(A, 0, 0.9)])])
    assert len(metric.results) == 1
