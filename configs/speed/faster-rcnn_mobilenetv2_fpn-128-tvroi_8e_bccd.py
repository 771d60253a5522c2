# BCCD Faster R-CNN with the plugin's fast RoI path: torchvision's roi_align
# (same numbers as mmcv's RoIAlign, faster on CPU; see configs/speed/README).
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(bbox_roi_extractor=dict(type='TorchvisionRoIExtractor')))
