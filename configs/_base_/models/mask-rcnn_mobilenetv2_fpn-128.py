# Mask R-CNN with a MobileNetV2-FPN from offline ImageNet weights, sized for
# CPU: 128 channels in the FPN, RPN and RoI heads (the Faster R-CNN base's
# backbone and neck), and SmallInitFCNMaskHead, whose mask logits start
# near ln 2 for few classes (configs/balloon/README.md). As in mmdet's model
# bases, num_classes is COCO's 80 here: the config that uses this base sets
# it in bbox_head and mask_head.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        # Strides 4 / 8 / 16 / 32, as the anchors and RoI extractors assume.
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        # Batches of 2-4 images are too small to re-estimate BN statistics.
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='offline-torchvision://mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 1280], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(type='SmallInitFCNMaskHead', in_channels=128,
                       conv_out_channels=128)))
