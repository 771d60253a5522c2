# The CPU-sized BCCD config, same model and schedule, with what a lab reads:
# per-class AP and PR curves, FROC and, at test time, a detection report and
# a confusion matrix next to the VOC and COCO mAP (their keys unchanged);
# TensorBoard; validation every epoch with the best checkpoint by COCO
# mAP@0.5 and early stopping; summary.md in the run's log dir.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(type='CocoMetric', metric='bbox', classwise=True),
    # pr/bbox_AP50_WBC, ... usable by save_best and EarlyStoppingHook.
    dict(type='PRCurveMetric'),
    # Cells are small and round: a hit is the predicted centre inside the
    # box, as in lesion detection. Keys froc/CPM and froc/sens_at_<f>fp.
    dict(type='FROCMetric', criterion='center'),
]
test_evaluator = val_evaluator + [
    dict(type='DetectionReport', score_thr=0.5, iou_thr=0.5),
    dict(type='ConfusionMatrixMetric', score_thr=0.5, iou_thr=0.5),
]

# Validation every epoch costs about a minute on 2 CPU cores (87 images).
train_cfg = dict(val_interval=1)
default_hooks = dict(
    checkpoint=dict(save_best='coco/bbox_mAP_50', rule='greater'))
custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook'),
    dict(  # its counters survive --resume (mmengine's reset silently)
        type='ResumableEarlyStoppingHook',
        monitor='coco/bbox_mAP_50',
        rule='greater',
        min_delta=0.002,
        patience=3),
    dict(type='RunSummaryHook'),
]
visualizer = dict(vis_backends=[
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
])
