# Faster R-CNN, MobileNetV2-FPN from offline ImageNet weights, BCCD, CPU-sized:
# 640x480 (native size), batch 4, SGD lr 0.01, 8 epochs, 128-channel FPN.
_base_ = [
    '../_base_/models/faster-rcnn_mobilenetv2_fpn-128.py',
    '../_base_/datasets/bccd_detection.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))

# Every BCCD training image has cells; an empty one would be a labelling
# slip, so it is left out (the dataset logs what it drops).
train_dataloader = dict(dataset=dict(filter_cfg=dict(filter_empty_gt=True)))

default_hooks = dict(checkpoint=dict(interval={{_base_.max_epochs}}))
