# 8 epochs of SGD at lr 0.01 for a small domain dataset (BCCD: 8 x 52
# iterations at batch 4). mmdet's 1x schedule warms up for 500 iterations,
# longer than this whole schedule, and decays at epochs 8 and 11; here the
# warm-up is 100 iterations and the one decay comes after epoch 6.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[6], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(enable=False, base_batch_size=4)
