# Upper bound: one model trained on all three classes with every label
# (configs/bccd's recipe), evaluated with the same old / new split.
_base_ = '../../../configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse')))

val_evaluator = [
    dict(type='IncrementalVOCMetric', old_classes=('RBC', )),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator
