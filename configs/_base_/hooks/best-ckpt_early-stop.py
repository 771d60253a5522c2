# Keep the best checkpoint and stop when the metric stops improving, with
# mmengine's CheckpointHook and its EarlyStoppingHook made resumable
# (ResumableEarlyStoppingHook saves its counters in the checkpoints); write
# summary.md after every evaluation. Merge it over a config with `--overlay`
# (tools/train.py, tools/test.py).
# `monitor` / `save_best` take any metric key of the evaluator, e.g.
# 'coco/bbox_mAP_50', 'pr/bbox_AP50_WBC' (PRCurveMetric) or 'froc/CPM'
# (FROCMetric). Early stopping needs validation every epoch
# (train_cfg.val_interval=1). This list comes first in custom_hooks; the
# config's own hooks of other kinds follow it (an EMAHook stays), those of
# a kind listed here (an EarlyStoppingHook) give way.
default_hooks = dict(
    checkpoint=dict(
        save_best='coco/bbox_mAP_50', rule='greater', max_keep_ckpts=1))
custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook'),
    dict(
        type='ResumableEarlyStoppingHook',
        monitor='coco/bbox_mAP_50',
        rule='greater',
        min_delta=0.002,
        patience=3),
    dict(type='RunSummaryHook'),
]
train_cfg = dict(val_interval=1)
