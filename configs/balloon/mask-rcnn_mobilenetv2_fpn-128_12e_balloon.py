# Mask R-CNN, MobileNetV2-FPN from offline ImageNet weights, balloon,
# CPU-sized: long side 512, batch 2, SGD lr 0.01, 12 epochs, 128-channel FPN
# and heads (the BCCD Faster R-CNN's backbone and neck).
_base_ = [
    '../_base_/models/mask-rcnn_mobilenetv2_fpn-128.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

# One class. The model base's mask head is SmallInitFCNMaskHead: mmdet's
# FCNMaskHead draws the one-class mask logits with std 1.41 (loss_mask
# starts at 5.3); drawn with std 0.001 they start at ln 2, and the same-seed
# run gains val mask AP at every epoch checked (README).
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=1), mask_head=dict(num_classes=1)))

dataset_type = 'BalloonDataset'
data_root = '../shared/datasets/balloon/'
backend_args = None
img_scale = (512, 512)  # long side 512 (the JPEGs are up to 2048 px)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # Polygons stay polygons through Resize and flip (cheaper than bitmaps
    # of 2048 px images); the mask head's targets are cut from them.
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # Balloons hang from strings: only horizontal flips.
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    # 'instances' (boxes and polygons in original pixels) lets CocoMetric
    # build the COCO ground truth itself (ann_file=None).
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='train/via_region_data.json',
        data_prefix=dict(img='train/'),
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
        ann_file='val/via_region_data.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader  # balloon has no test split

val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    ann_file=None,
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# 12 x 31 iterations: the base's 500 warm-up iterations and decay at epochs
# 8 and 11 of a 12-epoch COCO schedule are replaced by a short warm-up and
# one decay after epoch 9.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[9], gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=2)

default_hooks = dict(checkpoint=dict(interval=max_epochs))
