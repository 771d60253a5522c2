# BCCD 1+2 (issue 19): the previous model knows RBC; the step learns WBC and
# Platelets from the training images with their RBCs unlabelled. Shared by
# the step configs, which set only the losses. Not tuned yet.
_base_ = '../../../../configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

old_classes = ('RBC', )
new_classes = ('WBC', 'Platelets')
# The base model (RBC only, 8 epochs) of configs/bccd_fewshot's
# base-training config, trained with --work-dir work_dirs/bccd_fewshot/base
# (the command is in projects/IncrementalDet/README.md).
teacher_ckpt = 'work_dirs/bccd_fewshot/base/epoch_8.pth'

# The student starts from the teacher with its heads grown from 1 to 3
# classes (rcnn_plugin's class surgery), so no load_from. The fast RoI path
# of the base model (no parameters: the same checkpoint keys).
model = dict(
    type='IncrementalFasterRCNN',
    old_classes=old_classes,
    new_classes=new_classes,
    teacher_ckpt=teacher_ckpt,
    distill=dict(cls=0.0, reg=0.0, rpn=0.0, feat=0.0),
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse'),
        bbox_head=dict(num_classes=len(old_classes) + len(new_classes))))

# NewClassDataset: labels in the student's order (RBC 0, WBC 1, Platelets
# 2); BCCD labels every RBC, so 'warn' drops them with a count (the step's
# data is simulated from a fully labelled dataset).
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='NewClassDataset',
        old_classes=old_classes,
        new_classes=new_classes,
        on_old_labels='warn',
        dataset={{_base_.train_dataloader.dataset}}))

# Val / test keep all labels (BCCDDataset's order is RBC, WBC, Platelets).
# reference_old_ap50: the base model's RBC AP50 on the same split, to get
# the forgetting (--cfg-options test_evaluator.0.reference_old_ap50=...).
val_evaluator = [
    dict(type='IncrementalVOCMetric', old_classes=old_classes),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator

# The config doctor without its 'empty_data' check: in a step the old
# classes have no label by design (it would stop training on RBC having no
# instance). NewClassDataset logs the instances of every new class instead
# and refuses a new class without one.
custom_hooks = [
    dict(
        type='ConfigDoctorHook',
        checks=('feature_strides', 'num_classes', 'normalisation',
                'learning_rate', 'schedule', 'ema', 'sampler', 'evaluator',
                'ignored_negatives')),
    dict(type='TrainingHealthHook', nonfinite='stop', divergence='warn',
         collapse='warn'),
]
