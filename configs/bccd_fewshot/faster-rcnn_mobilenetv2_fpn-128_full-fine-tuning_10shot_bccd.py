# Full fine-tuning (plain head) at K=10: the 1-shot config with 10
# instances per class and a longer schedule.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_full-fine-tuning_1shot_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

shots = 10
max_iters = 640

train_dataloader = dict(dataset=dict(shots=shots))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=20),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
