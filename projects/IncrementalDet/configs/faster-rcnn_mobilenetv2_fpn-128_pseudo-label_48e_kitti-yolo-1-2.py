# Fine-tuning with the teacher's vehicle detections (score >= 0.5) added to
# the ground truth, except where they overlap a new box at IoU >= 0.5.
_base_ = './_base_/incremental-step_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(pseudo_label=dict(score_thr=0.5, iou_thr=0.5))
