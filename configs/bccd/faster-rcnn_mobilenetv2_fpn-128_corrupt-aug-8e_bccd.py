# BCCD Faster R-CNN with corruption-aware augmentation (docs/robustness.md):
# stain jitter in HED space and the four held-out corruptions of Michaelis
# et al. 2019 (never the 15 benchmark ones) right after image loading; the
# rest is faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py.
_base_ = [
    './faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py',
    '../_base_/augmentation/corruption-aware_microscopy.py'
]

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    {{_base_.corruption_aug}},
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
