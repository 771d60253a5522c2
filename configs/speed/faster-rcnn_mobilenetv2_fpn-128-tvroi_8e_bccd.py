# BCCD Faster R-CNN with the plugin's fast RoI path: RoIAlign as one sparse
# matrix product over all FPN levels (same numbers as mmcv's RoIAlign, much
# faster forward and backward on CPU; see configs/speed/README).
# backend='torchvision' selects torchvision's roi_align per level instead.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse')))
