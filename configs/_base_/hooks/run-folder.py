# A run folder a person reads without tools, as Ultralytics writes one.
# Merge it over an epoch-based config with `--overlay` (tools/train.py,
# tools/test.py). It validates and checkpoints every epoch, keeps the best
# checkpoint of the first metric ('auto'), stops early after 5 evaluations
# without improvement of that metric, and writes into the work dir:
#   results.csv / results.png   one row per epoch: lr, training and
#                               validation loss terms, metrics (plots)
#   labels.png                  the training set's labels (before training)
#   val_confusion_matrix.png/.csv, val_pr_curves.png, val_f1_curve.png,
#   val_per_class_ap.png/.csv   figures of each evaluation
#   val_predictions.jpg         val images: ground truth | predictions
#   best.pth / last.pth         links to the best and newest checkpoints
#   summary.md                  all of it in one page, health findings too
# The validation loss terms (val/loss, val/loss_cls, ...) are also logged
# and are metrics: save_best='val/loss' works. --resume continues all of it
# (results.csv keeps its rows, save_best and early stopping their state).
# Choose the metric with --cfg-options
# default_hooks.checkpoint.save_best=coco/bbox_mAP_50 (and the same
# monitor for ResumableEarlyStoppingHook). This list comes first in
# custom_hooks (so custom_hooks.7 is the early stopping); the config's own
# hooks of other kinds follow it (an EMAHook stays), those of a kind listed
# here (an EarlyStoppingHook) give way.
# Iteration-based configs (configs/bccd_fewshot/) cannot use it:
# EpochResultsHook stops them with an explanation before training.
default_hooks = dict(checkpoint=dict(interval=1, save_best='auto'))
train_cfg = dict(val_interval=1)
custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook'),
    dict(type='ValLossHook'),
    dict(type='EpochResultsHook'),
    dict(type='LabelStatsHook'),
    dict(type='EvalFiguresHook'),
    dict(type='ValPredictionsHook'),
    dict(
        type='ResumableEarlyStoppingHook',
        monitor='auto',
        min_delta=0.001,
        patience=5),
    dict(type='CheckpointLinksHook'),
    dict(type='RunSummaryHook', in_work_dir=True),
]
