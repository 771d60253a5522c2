# BCCD 1+1+1, step 2 (issue 19): the RBC model learns WBC. The recipe of
# BCCD 1+2's 'all' config; Platelets are not labelled yet (ignored, so
# background) in training and ignored in evaluation. Step 1 is
# configs/bccd_fewshot's base training (RBC); step 3 adds Platelets.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_all_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

old_classes = ('RBC', )
new_classes = ('WBC', )
# Where projects/IncrementalDet/tools/run_steps.py puts step 1's final
# checkpoint with its BCCD 1+1+1 sequence
# (projects/IncrementalDet/configs/bccd-1-1-1_sequence.yml); the driver
# sets this path itself, the default is for tools/train.py.
teacher_ckpt = 'work_dirs/incremental/bccd-1-1-1/step1/final.pth'

model = dict(
    old_classes=old_classes,
    new_classes=new_classes,
    teacher_ckpt=teacher_ckpt,
    roi_head=dict(
        bbox_head=dict(num_classes=len(old_classes) + len(new_classes))))

train_dataloader = dict(
    dataset=dict(old_classes=old_classes, new_classes=new_classes))
# Val / test: the classes known after the step (RBC 0, WBC 1); the
# Platelets of the split are ignored instances.
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=old_classes + new_classes,
        dataset={{_base_.val_dataloader.dataset}}))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=old_classes + new_classes,
        dataset={{_base_.test_dataloader.dataset}}))
val_evaluator = [
    dict(type='IncrementalVOCMetric', old_classes=old_classes),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator
