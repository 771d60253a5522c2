# Faster R-CNN with a MobileNetV2-FPN from offline ImageNet weights, sized for
# CPU: 128 channels in the FPN, RPN and RoI head. As in mmdet's model bases,
# num_classes is COCO's 80 here: the config that uses this base sets it.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        # layer2 (stride 4, 24 ch), layer3 (8, 32), layer5 (16, 96) and
        # conv2 (32, 1280): the FPN starts at stride 4, as the anchors and
        # RoI extractor of the base config assume.
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        # Batches of 2-4 images are too small to re-estimate BN statistics:
        # keep ImageNet's.
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='offline-torchvision://mobilenet_v2')),
    # 128 FPN channels instead of 256: the 3x3 FPN and RPN convolutions at
    # stride 4 are most of the FLOPs; this makes a CPU step about 2.5x
    # cheaper (BCCD, 640x480). A few domain classes do not need 256.
    neck=dict(in_channels=[24, 32, 96, 1280], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128)))
