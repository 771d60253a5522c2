# Faster R-CNN, MobileNetV2-FPN from offline ImageNet weights, BCCD, CPU-sized:
# 640x480 (native size), batch 4, SGD lr 0.01, 8 epochs, 128-channel FPN.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        # layer2 (stride 4, 24 ch), layer3 (8, 32), layer5 (16, 96) and
        # conv2 (32, 1280): the FPN starts at stride 4, as the anchors and
        # RoI extractor of the base config assume.
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        # Batch 4 is too small to re-estimate BN statistics: keep ImageNet's.
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='offline-torchvision://mobilenet_v2')),
    # 128 FPN channels instead of 256: the 3x3 FPN and RPN convolutions at
    # stride 4 (160x120) are most of the FLOPs; this makes a CPU step about
    # 2.5x cheaper. Three cell classes do not need 256 channels.
    neck=dict(in_channels=[24, 32, 96, 1280], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, num_classes=3)))

dataset_type = 'BCCDDataset'
data_root = '../shared/datasets/bccd/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    # Smears have no up or left: every flip is a valid training image.
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # 'instances' lets CocoMetric evaluate without a COCO json file.
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/train.txt',
        data_prefix=dict(sub_data_root=''),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root=''),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        val_dataloader['dataset'], ann_file='ImageSets/Main/test.txt'))

val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# The base warms up for 500 iterations, longer than this whole schedule
# (8 x 52 iterations), and decays at epochs 8 and 11, never reached here.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[6], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
# Checks strides, classes, normalisation, lr and the training set before
# the first iteration (rcnn_plugin's config doctor); enabled=False skips it.
custom_hooks = [dict(type='ConfigDoctorHook')]
