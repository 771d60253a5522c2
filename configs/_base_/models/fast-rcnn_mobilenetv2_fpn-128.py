# Fast R-CNN (precomputed proposals, no RPN) with a MobileNetV2-FPN from
# offline ImageNet weights, 128 channels in the FPN and RoI head: the Faster
# R-CNN base without its RPN. num_classes is COCO's 80 here, as in mmdet's
# model bases: the config that uses this base sets it.
_base_ = 'mmdet::_base_/models/fast-rcnn_r50_fpn.py'

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
        bbox_head=dict(in_channels=128)))
