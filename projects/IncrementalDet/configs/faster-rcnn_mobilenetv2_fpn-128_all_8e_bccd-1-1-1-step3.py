# BCCD 1+1+1, step 3 (issue 19): the RBC + WBC model of step 2 learns
# Platelets, with the recipe of BCCD 1+2's 'all' config. Training images
# label Platelets only; the test split keeps every label.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_all_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

old_classes = ('RBC', 'WBC')
new_classes = ('Platelets', )
# Step 2's final checkpoint where projects/IncrementalDet/tools/run_steps.py
# writes it with its BCCD 1+1+1 sequence
# (projects/IncrementalDet/configs/bccd-1-1-1_sequence.yml); the driver
# sets this path itself, the default is for tools/train.py.
teacher_ckpt = 'work_dirs/incremental/bccd-1-1-1/step2/final.pth'

model = dict(
    old_classes=old_classes,
    new_classes=new_classes,
    teacher_ckpt=teacher_ckpt,
    roi_head=dict(
        bbox_head=dict(num_classes=len(old_classes) + len(new_classes))))

train_dataloader = dict(
    dataset=dict(old_classes=old_classes, new_classes=new_classes))
# Val / test: BCCD's order, RBC, WBC, Platelets (the student's).
val_evaluator = [
    dict(type='IncrementalVOCMetric', old_classes=old_classes),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator
