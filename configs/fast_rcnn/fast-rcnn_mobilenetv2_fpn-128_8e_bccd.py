# Fast R-CNN on BCCD from precomputed RPN proposals: the backbone, neck, RoI
# head, data and schedule of the BCCD Faster R-CNN
# (configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py: MobileNetV2-FPN
# 128 ch from offline ImageNet weights, 640x480, batch 4, SGD lr 0.01,
# 8 epochs), trained on the proposals that tools/generate_proposals.py
# writes from that Faster R-CNN's RPN. The model base is mmdet's Fast R-CNN
# (no RPN) with the same MobileNetV2-FPN.
_base_ = [
    '../_base_/models/fast-rcnn_mobilenetv2_fpn-128.py',
    '../_base_/datasets/bccd_detection.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))

# Written by step 2 of configs/fast_rcnn/README.md; absolute, because mmdet
# joins a relative proposal_file to data_root.
proposal_dir = '{{ fileDirname }}/../../work_dirs/bccd_proposals/'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
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
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
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
    dataset=dict(
        proposal_file=proposal_dir + 'train.pkl',
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        proposal_file=proposal_dir + 'val.pkl', pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        proposal_file=proposal_dir + 'test.pkl', pipeline=test_pipeline))

default_hooks = dict(checkpoint=dict(interval={{_base_.max_epochs}}))
