# Fast R-CNN on BCCD from precomputed RPN proposals: the backbone, neck, RoI
# head and schedule of configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py
# (MobileNetV2-FPN 128 ch from offline ImageNet weights, 640x480, batch 4,
# SGD lr 0.01, 8 epochs), trained on the proposals that
# tools/generate_proposals.py writes from that Faster R-CNN's RPN.
_base_ = 'mmdet::fast_rcnn/fast-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        # Strides 4 / 8 / 16 / 32, as the RoI extractor's featmap_strides.
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='offline-torchvision://mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 1280], out_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, num_classes=3)))

dataset_type = 'BCCDDataset'
data_root = '../shared/datasets/bccd/'
# Written by step 2 of configs/fast_rcnn/README.md; absolute, because mmdet
# joins a relative proposal_file to data_root.
proposal_dir = '{{ fileDirname }}/../../work_dirs/bccd_proposals/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadProposals', num_max_proposals=1000),
    dict(type='LoadAnnotations', with_bbox=True),
    # Resize and flip the proposals with the same parameters as the image.
    dict(
        type='ProposalBroadcaster',
        transforms=[
            dict(type='Resize', scale=(640, 480), keep_ratio=True),
            dict(
                type='RandomFlip',
                prob=[0.25, 0.25, 0.25],
                direction=['horizontal', 'vertical', 'diagonal']),
        ]),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadProposals', num_max_proposals=None),
    dict(
        type='ProposalBroadcaster',
        transforms=[dict(type='Resize', scale=(640, 480), keep_ratio=True)]),
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
        proposal_file=proposal_dir + 'train.pkl',
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
        proposal_file=proposal_dir + 'val.pkl',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        val_dataloader['dataset'],
        ann_file='ImageSets/Main/test.txt',
        proposal_file=proposal_dir + 'test.pkl'))

val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# As the Faster R-CNN config: the base's 500 warm-up iterations and decay at
# epochs 8 and 11 do not fit 8 x 52 iterations.
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

# Check the wiring (strides, classes, normalisation, ...) before training.
custom_hooks = [dict(type='ConfigDoctorHook')]
