# kitti_yolo Faster R-CNN with corruption-aware augmentation
# (docs/robustness.md): the four held-out corruptions of Michaelis et al.
# 2019 and photometric change right after image loading; the rest is
# faster-rcnn_mobilenetv2_fpn-128_48e_kitti-yolo.py.
_base_ = [
    './faster-rcnn_mobilenetv2_fpn-128_48e_kitti-yolo.py',
    '../_base_/augmentation/corruption-aware_driving.py'
]

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    {{_base_.corruption_aug}},
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1242, 375), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
