# ABR as published (Liu et al. ICCV 2023, `--feat ard --uce --dist_type id
# -mt mean`): the abr-mma config (box replay, MMA's unbiased classification
# and distillation, box-delta distillation) plus
# - the Attentive RoI Distillation of the RoI features on the distilled
#   RoIs (gamma = ABR's 1.0 of its 15-5, 10-10 and 5-15 runs; the other
#   weights stay the abr-mma config's);
# - ABR's prototype memory: the 50 RBC boxes nearest the class mean of the
#   base model's RoI features (build_replay_memory.py --select mean), and
#   the same selection for the next step's memory;
# - ABR's replay modes: on half of the images, mixup or ABR's box mosaic (a
#   grey square of four RBC crops instead of the image), "MIX:MOS:NEW =
#   1:1:2" as ABR's transform_current_data_with_ABR.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_abr-mma_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(distill=dict(ard=1.0, ard_gamma=1.0))

replay_memory = 'work_dirs/bccd_fewshot/base/replay_memory_mean'
train_pipeline = _base_.train_pipeline
train_pipeline[2].update(  # the BoxReplay step
    memory=replay_memory, modes=('mixup', 'mosaic'))
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
custom_hooks = _base_.custom_hooks
custom_hooks[-1].update(memory=replay_memory, select='mean')
