# mmdet's runtime, with a log line every 10 iterations (a small dataset has
# few per epoch), only the newest checkpoint kept, a fixed seed (mmdet's
# runtime sets none, so each run draws one; --cfg-options
# randomness.seed=N picks another), rcnn_plugin's config doctor, which
# checks strides, classes, normalisation, lr and the training set before the
# first iteration (dict(type='ConfigDoctorHook', enabled=False) skips it),
# and its training-health guard, which stops on non-finite losses or
# gradients and warns on divergence and a collapsed classifier (see
# TrainingHealthHook; health.json in the work dir).
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
randomness = dict(seed=0)
custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook', nonfinite='stop', divergence='warn',
         collapse='warn'),
]
