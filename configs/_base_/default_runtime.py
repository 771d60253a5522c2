# mmdet's runtime, with a log line every 10 iterations (a small dataset has
# few per epoch), only the newest checkpoint kept, and rcnn_plugin's config
# doctor, which checks strides, classes, normalisation, lr and the training
# set before the first iteration (dict(type='ConfigDoctorHook',
# enabled=False) skips it).
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
custom_hooks = [dict(type='ConfigDoctorHook')]
