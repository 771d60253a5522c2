# torchvision's fasterrcnn_resnet50_fpn (v1) as an mmdet model. Convert its
# weights with tools/model_converters/torchvision2mmdet.py and set load_from
# to the result. Each override below makes mmdet compute what torchvision
# computes; see README.md for the measured agreement.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    # mmdet's defaults already equal torchvision's transform: ImageNet
    # mean/std on RGB (x255), zero padding to a multiple of 32 after
    # normalisation.
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    # FrozenBatchNorm2d: statistics and affine parameters both frozen;
    # trainable_backbone_layers=3 freezes the stem and layer1.
    backbone=dict(
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        frozen_stages=1,
        init_cfg=None),  # weights come from load_from
    # torchvision rounds the base anchors to whole pixels.
    rpn_head=dict(anchor_generator=dict(type='TorchvisionAnchorGenerator')),
    # MultiScaleRoIAlign: sampling_ratio=2, aligned=False, FPN Eqn. 1.
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionLevelRoIExtractor',
            roi_layer=dict(
                type='RoIAlign',
                output_size=7,
                sampling_ratio=2,
                aligned=False))),
    # torchvision drops proposals narrower than 1e-3 px; 1000 pre/post NMS.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=2000,
                          min_bbox_size=1e-3)),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=1000,
                           min_bbox_size=1e-3)))

# Check the wiring (strides, classes, normalisation, ...) before training.
custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook'),
]
# mmdet's runtime sets no seed: each run would draw one.
randomness = dict(seed=0)

# The converted torchvision weights (README.md: torchvision2mmdet.py writes
# them here). Without them the model would train from random weights, as
# init_cfg=None leaves it; a missing file is an error instead.
load_from = 'checkpoints/faster-rcnn_r50_fpn_torchvision_coco.pth'
