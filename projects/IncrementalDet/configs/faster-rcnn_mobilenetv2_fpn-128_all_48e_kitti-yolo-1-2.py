# Everything together: Faster ILOD's RPN and feature distillation, MMA's
# unbiased classification and distillation, ILOD's box-delta distillation
# and the teacher's pseudo-labels.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_mma_48e_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(
    distill=dict(rpn=1.0, feat=1.0),
    pseudo_label=dict(score_thr=0.5, iou_thr=0.5))
