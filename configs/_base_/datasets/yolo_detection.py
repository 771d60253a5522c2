# YOLO txt read in place by YOLODataset (class names from obj.names,
# classes.txt or data.yaml). The layout below is CVAT's "YOLO 1.1" export
# split into folders, as in ../shared/datasets/kitti_yolo; for Ultralytics
# use img='images/train', ann='labels/train'.
dataset_type = 'YOLODataset'
data_root = 'data/yolo/'

backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # 'instances' lets CocoMetric evaluate without a COCO json file.
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img='images/train/obj_train_data',
            ann='labels/train/obj_train_data'),
        # Images without objects (negative images) are kept for training;
        # filter_empty_gt=True drops them, as mmdet's COCO configs do.
        filter_cfg=dict(filter_empty_gt=False, min_size=0),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img='images/val/obj_train_data',
            ann='labels/val/obj_train_data'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    # No COCO json: CocoMetric converts the packed 'instances' meta key.
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator
