# Lever: EMA of the weights (mmdet's EMAHook, ExpMomentumEMA); validation
# and the checkpoint use the averaged weights. Else as the BCCD config.
# YOLOX's gamma=2000 anneals the momentum over thousands of iterations;
# this run has 416 (8 epochs x 52), where it would end at 0.81 and the
# average would be the raw weights. gamma=100 and momentum=0.01 end at
# 0.025: 90 % of the average comes from the last 71 iterations (about the
# low-lr epochs 7 and 8).
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook', nonfinite='stop', divergence='warn',
         collapse='warn'),
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.01,
         gamma=100, update_buffers=True, priority=49),
]
