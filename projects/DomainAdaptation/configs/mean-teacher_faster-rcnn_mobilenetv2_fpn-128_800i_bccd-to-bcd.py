# Mean-teacher adaptation (Adaptive-Teacher style) from BCCD to bcd on
# mmdet's SemiBaseDetector and MeanTeacherHook: labelled BCCD batches for
# the student, weak views of unlabelled bcd images for the EMA teacher,
# whose boxes above cls_pseudo_thr train the student on strong views, and
# an image-level discriminator behind gradient reversal (Li et al., CVPR
# 2022). Start from the source-only model (the Adaptive Teacher burn-in):
#   --cfg-options load_from=<source-only checkpoint>
# (plain checkpoints load into both teacher and student).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_source-only-8e_bccd-to-bcd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.DomainAdaptation.domain_adaptation'],
    allow_failed_imports=False)

branch_field = ['sup', 'unsup_teacher', 'unsup_student']
detector = _base_.model

model = dict(
    _delete_=True,
    type='DomainAdaptiveTeacher',
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor),
    semi_train_cfg=dict(
        freeze_teacher=True,
        sup_weight=1.0,
        unsup_weight=1.0,
        cls_pseudo_thr=0.7,  # Adaptive Teacher's threshold 0.8, CMT 0.7
        min_pseudo_bbox_wh=(1e-2, 1e-2)),
    semi_test_cfg=dict(predict_on='teacher'),
    discriminator=dict(type='ImageDomainClassifier', grl_weight=0.1),
    disc_weight=0.1)

color_space = [
    [dict(type='ColorTransform')],
    [dict(type='AutoContrast')],
    [dict(type='Equalize')],
    [dict(type='Sharpness')],
    [dict(type='Contrast')],
    [dict(type='Brightness')],
]
flip = dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
            direction=['horizontal', 'vertical', 'diagonal'])
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'homography_matrix')
source_pipeline = _base_.train_pipeline[:-1] + [
    dict(type='MultiBranch', branch_field=branch_field,
         sup=dict(type='PackDetInputs'))
]
weak_pipeline = [
    dict(type='Resize', scale=(640, 480), keep_ratio=True), flip,
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
strong_pipeline = [
    dict(type='Resize', scale=(640, 480), keep_ratio=True), flip,
    dict(type='RandAugment', aug_space=color_space, aug_num=1),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
# No target boxes: UnlabelledDataset withholds them and the pipeline only
# adds empty ones (mmdet's LoadEmptyAnnotations).
target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadEmptyAnnotations'),
    dict(type='MultiBranch', branch_field=branch_field,
         unsup_teacher=weak_pipeline, unsup_student=strong_pipeline)
]
source_dataset = dict(_base_.train_dataloader.dataset,
                      pipeline=source_pipeline)
unlabelled_target = dict(
    type='UnlabelledDataset',
    dataset=dict(
        type='SeededSplitDataset',
        dataset=dict(_base_.target_dataset, pipeline=target_pipeline),
        part='train',
        **_base_.bcd_split))

train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=4,
                 source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', ignore_keys=['palette'],
                 datasets=[source_dataset, unlabelled_target]))

max_iters = 800
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='TeacherStudentValLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[600], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=max_iters),
    logger=dict(interval=20))
log_processor = dict(by_epoch=False)
# The EMA teacher; 800 iterations, so a faster EMA than mmdet's 0.001.
custom_hooks = _base_.custom_hooks + [
    dict(type='MeanTeacherHook', momentum=0.002)
]
