# ABR box replay (Liu et al. ICCV 2023, "Augmented Box Replay") on plain
# fine-tuning: vehicle crops of the previous step's memory are mixed up with
# or pasted into the new-class training images, labelled vehicle (label 0,
# the student's order). No other loss, so the row measures the replay
# alone. ABR itself also trains MMA-style inclusive classification and
# distillation (the `mma` config's terms) and an Attentive RoI
# Distillation (`distill.ard`; the BCCD abr-ard config is ABR in full).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_fine-tuning_48e_kitti-yolo-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

old_classes = {{_base_.old_classes}}
# The memory of step 1 (vehicle, 50 crops, seed 0), built beside the base
# model's checkpoint by projects/IncrementalDet/tools/build_replay_memory.py
# (the command is in projects/IncrementalDet/README.md). Its classes must
# be old_classes, else the pipeline refuses it, naming the file.
replay_memory = 'work_dirs/incremental/kitti-yolo-1-2/base/replay_memory'

# BoxReplay sits after LoadAnnotations and before Resize: crops keep the
# native 1242x375 scale they were cut at. ABR's ratio: up to 2 crops on half
# of the images, mixup (lam ~ Beta(2, 5)) or paste drawn per image. The
# rest is configs/kitti's pipeline (streets have an up: horizontal flips).
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
    dict(type='Resize', scale=(1242, 375), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

# custom_hooks is a list (lists replace): the base's hooks, then
# ReplayMemoryHook, which writes <work_dir>/replay_memory (vehicle from
# this memory, pedestrian and cyclist cut from this step's data, 50 each at
# most: the training split has 39 cyclists) for the next step.
custom_hooks = _base_.custom_hooks + [
    dict(type='ReplayMemoryHook', memory=replay_memory, budget=50, seed=0),
]
