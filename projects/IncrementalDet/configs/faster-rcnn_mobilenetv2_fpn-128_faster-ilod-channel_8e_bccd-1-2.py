# Faster ILOD with the distillation variants measured in sessions 20-21:
# the FPN features centred per channel with a two-sided L1 (Faster ILOD's
# own is centred per map and one-sided, max(teacher - student, 0)), and the
# RPN terms averaged over every anchor of every level with the box mask of
# the objectness term (Faster ILOD's: per level, then over the levels, box
# term where the teacher's objectness is higher by more than 0.1).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_faster-ilod_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(distill=dict(feat_mode='channel', rpn_mode='anchors'))
