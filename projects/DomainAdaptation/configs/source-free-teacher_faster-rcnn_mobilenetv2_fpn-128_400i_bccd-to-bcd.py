# Source-free adaptation from BCCD to bcd (issue 21, part 3): only the
# source model and unlabelled bcd images exist. Student and EMA teacher
# both start from the source model; the teacher's boxes above
# cls_pseudo_thr on weak views train the student on strong views (the
# mean teacher without its labelled source batches and without the
# discriminator, which needs source images). The source model is
# load_from; a missing file stops the run before training:
#   --cfg-options load_from=<source checkpoint>
_base_ = './mean-teacher_faster-rcnn_mobilenetv2_fpn-128_800i_bccd-to-bcd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.DomainAdaptation.domain_adaptation'],
    allow_failed_imports=False)

load_from = ('work_dirs/faster-rcnn_mobilenetv2_fpn-128_source-only-8e_'
             'bccd-to-bcd/epoch_8.pth')

branch_field = ['unsup_teacher', 'unsup_student']
model = dict(source_free=True, discriminator=None)

target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadEmptyAnnotations'),
    dict(type='MultiBranch', branch_field=branch_field,
         unsup_teacher=_base_.weak_pipeline,
         unsup_student=_base_.strong_pipeline)
]
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='UnlabelledDataset',
        dataset=dict(
            type='SeededSplitDataset',
            dataset=dict(_base_.target_dataset, pipeline=target_pipeline),
            part='train',
            **_base_.bcd_split)))

# Every image of a batch is a target image (the mean teacher's batches are
# half source): 400 iterations show the student the same 1,600 target
# views as the mean teacher's 800, and an EMA momentum twice as large
# gives the teacher the same horizon in target images.
max_iters = 400
train_cfg = dict(max_iters=max_iters)
# Source-free: only the source model exists, so no source (BCCD) split is
# read, not even to validate; score BCCD after training with
# tools/extract_detector.py and tools/test.py.
val_dataloader = None
val_cfg = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[300], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='MeanTeacherHook', momentum=0.004)
]
