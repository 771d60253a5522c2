# ABR box replay (Liu et al. ICCV 2023, "Augmented Box Replay") on plain
# fine-tuning: RBC crops of the previous step's memory are mixed up with or
# pasted into the new-class training images, labelled RBC. No other loss,
# so the row measures the replay alone. ABR itself also trains MMA-style
# inclusive classification and distillation (the `mma` config's terms) and
# an Attentive RoI Distillation: the abr-mma and abr-ard configs.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_fine-tuning_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

old_classes = {{_base_.old_classes}}
# The memory of step 1 (RBC, 50 crops, seed 0), built beside the base
# model's checkpoint by projects/IncrementalDet/tools/build_replay_memory.py
# (the command is in projects/IncrementalDet/README.md). Its classes must
# be old_classes, else the pipeline refuses it, naming the file.
replay_memory = 'work_dirs/bccd_fewshot/base/replay_memory'

# BoxReplay sits after LoadAnnotations and before Resize: crops keep the
# native 640x480 scale they were cut at. ABR's ratio: up to 2 crops on half
# of the images, mixup (lam ~ Beta(2, 5)) or paste drawn per image.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='BoxReplay',
        memory=replay_memory,
        old_classes=old_classes,
        modes=('mixup', 'paste'),
        prob=0.5,
        max_crops=2),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

# custom_hooks is a list (lists replace): the base's hooks, then
# ReplayMemoryHook, which writes <work_dir>/replay_memory (RBC from
# this memory, WBC and Platelets cut from this step's data, 50 each) for
# the next step.
custom_hooks = _base_.custom_hooks + [
    dict(type='ReplayMemoryHook', memory=replay_memory, budget=50, seed=0),
]
