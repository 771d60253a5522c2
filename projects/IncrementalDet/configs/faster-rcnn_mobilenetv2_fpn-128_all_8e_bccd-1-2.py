# Everything that goes together: Faster ILOD's RPN and feature
# distillation and ILOD's box-delta distillation, MMA's unbiased
# distillation (the student's new classes merged into background), and the
# teacher's pseudo-labels. MMA's unbiased classification is left out: it
# assumes the old objects are unlabelled, and pseudo-labels label them
# (IncrementalFasterRCNN refuses the pair). ABR's box replay is not in
# it: it needs a memory (its pipeline is in the abr config).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_faster-ilod_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(
    distill=dict(cls_mode='unbiased'),
    pseudo_label=dict(score_thr=0.5, iou_thr=0.5))
