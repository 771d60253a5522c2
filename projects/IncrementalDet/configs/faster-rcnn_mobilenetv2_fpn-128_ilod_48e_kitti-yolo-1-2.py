# ILOD (Shmelkov et al. 2017): L2 on the teacher's mean-centred logits and
# box deltas on 64 of its 128 proposals with the lowest background score.
_base_ = './_base_/incremental-step_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(distill=dict(cls=1.0, reg=1.0))
