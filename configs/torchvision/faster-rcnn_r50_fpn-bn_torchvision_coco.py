# torchvision's fasterrcnn_resnet50_fpn_v2 (Li et al. 2021, "Benchmarking
# detection transfer learning with vision transformers") as an mmdet model:
# BatchNorm in the FPN and the 4-conv box head, two RPN convs.
_base_ = './faster-rcnn_r50_fpn_torchvision_coco.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # v2 has ordinary BatchNorm; fine-tuned from trained weights it trains
    # layer2-4 (trainable_backbone_layers=3), stem and layer1 frozen. mmdet
    # also keeps the frozen stages' BN statistics fixed, which torchvision
    # goes on updating.
    backbone=dict(
        norm_cfg=norm_cfg, norm_eval=False, frozen_stages=1),
    neck=dict(norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg)))

# The converted torchvision weights (README.md: torchvision2mmdet.py writes
# them here). Without them the model would train from random weights, as
# init_cfg=None leaves it; a missing file is an error instead.
load_from = 'checkpoints/faster-rcnn_r50_fpn-bn_torchvision_coco.pth'
