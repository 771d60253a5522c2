# Faster ILOD (Peng et al. 2020): ILOD's RoI distillation, plus the filtered
# RPN distillation and its normalised filtered L1 on the FPN features.
_base_ = './_base_/incremental-step_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(distill=dict(cls=1.0, reg=1.0, rpn=1.0, feat=1.0))
