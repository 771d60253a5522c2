# Faster R-CNN, MobileNetV2-FPN (128 channels) from offline ImageNet weights,
# on kitti_yolo: KITTI street scenes labelled in CVAT and exported as YOLO
# txt, read in place by YOLODataset. Native 1242x375 images, batch 4, SGD
# lr 0.01 and 48 epochs for 40 training images.
_base_ = [
    '../_base_/models/faster-rcnn_mobilenetv2_fpn-128.py',
    '../_base_/datasets/yolo_detection.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

# pedestrian, cyclist, vehicle (labels/*/obj.names order)
model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))

data_root = '../shared/datasets/kitti_yolo/'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    # Native size: pedestrians and cyclists are often under 40 px high.
    dict(type='Resize', scale=(1242, 375), keep_ratio=True),
    # Streets have an up: horizontal flips only.
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(1242, 375), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]

train_dataloader = dict(
    batch_size=4,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
# The 10 images of images/test carry no labels: val is also the test split.
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# 40 images at batch 4 are 10 iterations per epoch. 12 epochs (120
# iterations) measured VOC mAP@0.5 0.041 on val: the RPN loss was still
# falling steeply when training stopped (README). 48 epochs: 100 warm-up
# iterations as the BCCD config, decay x0.1 after epoch 40.
max_epochs = 48
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[40], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
