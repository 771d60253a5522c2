# Lever: EMA of the weights (mmdet's EMAHook, ExpMomentumEMA); validation
# and the checkpoint use the averaged weights. Else as the BCCD config.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook', nonfinite='stop', divergence='warn',
         collapse='warn'),
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
         update_buffers=True, priority=49),
]
