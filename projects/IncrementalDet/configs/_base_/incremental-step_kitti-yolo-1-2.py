# kitti_yolo 1+2 (issue 19): the previous model knows vehicle; the step
# learns pedestrian and cyclist from the training images with their vehicles
# unlabelled. Shared by the step configs, which set only the losses. The
# kitti_yolo recipe (configs/kitti: native 1242x375, horizontal flips,
# batch 4, lr 0.01, 48 epochs); not tuned for the step.
_base_ = ('../../../../configs/kitti/'
          'faster-rcnn_mobilenetv2_fpn-128_48e_kitti-yolo.py')

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

old_classes = ('vehicle', )
new_classes = ('pedestrian', 'cyclist')
# The base model (vehicle only, 48 epochs) of this folder's
# faster-rcnn_mobilenetv2_fpn-128_base-training_48e_kitti-yolo-1.py, trained
# with --work-dir work_dirs/incremental/kitti-yolo-1-2/base (the command is
# in projects/IncrementalDet/README.md).
teacher_ckpt = 'work_dirs/incremental/kitti-yolo-1-2/base/epoch_48.pth'

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

# The label order differs from BCCD 1+2's: kitti_yolo's classes are
# (pedestrian, cyclist, vehicle) in obj.names order, the student's are
# old + new (vehicle 0, pedestrian 1, cyclist 2). NewClassDataset numbers
# the training labels in the student's order; kitti_yolo labels every
# vehicle, so 'warn' drops them with a count (the step's data is simulated
# from a fully labelled dataset).
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='NewClassDataset',
        old_classes=old_classes,
        new_classes=new_classes,
        on_old_labels='warn',
        dataset={{_base_.train_dataloader.dataset}}))

# Val / test keep all labels, renumbered to the student's order by
# ClassSubsetDataset (its metainfo classes are the evaluators' class names:
# without it the student's vehicle, label 0, would be scored as a
# pedestrian). The 15 val images are also the test split (configs/kitti).
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

# reference_old_ap50: the base model's vehicle AP50 on the same split, to
# get the forgetting (--cfg-options test_evaluator.0.reference_old_ap50=...).
val_evaluator = [
    dict(type='IncrementalVOCMetric', old_classes=old_classes),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator

# The config doctor without its 'empty_data' check: in a step the old
# classes have no label by design (it would stop training on vehicle having
# no instance). NewClassDataset logs the instances of every new class
# instead and refuses a new class without one.
custom_hooks = [
    dict(
        type='ConfigDoctorHook',
        checks=('feature_strides', 'num_classes', 'normalisation',
                'learning_rate', 'schedule', 'ema', 'sampler', 'evaluator',
                'ignored_negatives')),
    dict(type='TrainingHealthHook', nonfinite='stop', divergence='warn',
         collapse='warn'),
]
