# Lower bound of BCCD 1+1+1, step 2: plain fine-tuning of the grown model on
# the new labels, the same class split and data as the 'all' config of the
# step with every distillation loss and the pseudo-labels switched off.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_all_8e_bccd-1-1-1-step2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

# tools/run_steps.py chains the lower bound's own checkpoints (fine-tuning
# after fine-tuning) and sets this path itself.
teacher_ckpt = 'work_dirs/incremental/bccd-1-1-1/step1/final.pth'

model = dict(
    teacher_ckpt=teacher_ckpt,
    distill=dict(cls=0.0, reg=0.0, rpn=0.0, feat=0.0, cls_mode='l2'),
    pseudo_label=None)
