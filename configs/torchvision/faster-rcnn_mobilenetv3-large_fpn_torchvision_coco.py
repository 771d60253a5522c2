# torchvision's fasterrcnn_mobilenet_v3_large_fpn as an mmdet model. Its FPN
# reads two MobileNetV3 layers that are BOTH at stride 32 (features.13, the
# last down-sampling block, and features.16) and adds a max-pooled level at
# stride 64; every level carries 15 anchors (sizes 32-512 x 3 ratios).
_base_ = './faster-rcnn_r50_fpn_torchvision_coco.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='TorchvisionBackbone',
        name='mobilenet_v3_large',
        out_layers=['features.13', 'features.16'],
        # FrozenBatchNorm2d's eps (MobileNetV3's own BN uses 1e-3)
        norm_eps=1e-5,
        # trainable_backbone_layers=3: features.0-6 frozen
        frozen_stages=2,
        norm_eval=True),
    neck=dict(in_channels=[160, 960], num_outs=3),
    rpn_head=dict(
        type='TorchvisionRPNHead',
        anchor_generator=dict(
            type='TorchvisionAnchorGenerator',
            strides=[32, 32, 64],
            base_sizes=[32, 32, 32],
            scales=[1, 2, 4, 8, 16],
            ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[32, 32])),
    # rpn_score_thresh=0.05
    train_cfg=dict(rpn_proposal=dict(score_thr=0.05)),
    test_cfg=dict(rpn=dict(score_thr=0.05)))

# The converted torchvision weights (README.md: torchvision2mmdet.py writes
# them here). Without them the model would train from random weights, as
# init_cfg=None leaves it; a missing file is an error instead.
load_from = ('checkpoints/'
             'faster-rcnn_mobilenetv3-large_fpn_torchvision_coco.pth')
