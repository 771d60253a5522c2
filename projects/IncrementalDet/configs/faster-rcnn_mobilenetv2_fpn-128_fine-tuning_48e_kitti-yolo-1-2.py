# Lower bound: plain fine-tuning on the new labels (the unlabelled vehicles
# are background); the teacher only initialises the student.
_base_ = './_base_/incremental-step_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)
