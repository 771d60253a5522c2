# BCCD (blood cell smears, Pascal VOC layout) read in place by BCCDDataset:
# the 640x480 images at native size, ImageSets/Main/{train,val,test}.txt.
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
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/train.txt',
        data_prefix=dict(sub_data_root=''),
        # Images without objects (negative images) are kept for training;
        # filter_empty_gt=True drops them, as mmdet's VOC configs do.
        filter_cfg=dict(filter_empty_gt=False),
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
        ann_file='ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root=''),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'], ann_file='ImageSets/Main/test.txt'))

val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    # No COCO json: CocoMetric converts the packed 'instances' meta key.
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator
