# torchvision's maskrcnn_resnet50_fpn as an mmdet model; same overrides as
# faster-rcnn_r50_fpn_torchvision_coco.py, plus the mask RoI pooling
# (14x14, sampling_ratio=2, aligned=False).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

roi_align = dict(type='RoIAlign', sampling_ratio=2, aligned=False)
model = dict(
    backbone=dict(
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        frozen_stages=1,
        init_cfg=None),
    rpn_head=dict(anchor_generator=dict(type='TorchvisionAnchorGenerator')),
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionLevelRoIExtractor',
            roi_layer=dict(roi_align, output_size=7)),
        mask_roi_extractor=dict(
            type='TorchvisionLevelRoIExtractor',
            roi_layer=dict(roi_align, output_size=14))),
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
load_from = 'checkpoints/mask-rcnn_r50_fpn_torchvision_coco.pth'
