# Mask R-CNN, MobileNetV2-FPN from offline ImageNet weights, balloon, full
# size (for GPUs): multi-scale 1333x(640-800), batch 8, SGD lr 0.02,
# 24 epochs, 256-channel FPN and heads.
_base_ = './mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(norm_eval=True),
    neck=dict(out_channels=256),
    rpn_head=dict(in_channels=256, feat_channels=256),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=256),
        bbox_head=dict(in_channels=256),
        mask_roi_extractor=dict(out_channels=256),
        mask_head=dict(in_channels=256, conv_out_channels=256)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
train_dataloader = dict(
    batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
# 61 images are 8 iterations per epoch at batch 8: 192 in all.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[16, 22], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.02))
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=1))
