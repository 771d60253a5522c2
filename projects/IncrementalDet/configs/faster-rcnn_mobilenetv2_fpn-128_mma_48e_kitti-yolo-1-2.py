# MMA (Cermelli et al. 2022): unbiased classification (background = the
# background or an old class) and unbiased distillation (the student's new
# classes merged into background), with ILOD's box-delta distillation.
_base_ = './_base_/incremental-step_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(
    distill=dict(cls=1.0, reg=1.0, cls_mode='unbiased'),
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='UnbiasedCrossEntropyLoss',
                num_old_classes=1))))  # len(old_classes): vehicle
