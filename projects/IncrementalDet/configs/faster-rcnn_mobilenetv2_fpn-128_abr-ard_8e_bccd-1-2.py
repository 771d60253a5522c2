# ABR as published (Liu et al. ICCV 2023, `--feat ard --uce --dist_type id`):
# the abr-mma config (box replay, MMA's unbiased classification and
# distillation, box-delta distillation) plus the Attentive RoI Distillation
# of the RoI features on the distilled RoIs. gamma (the attention term) is
# ABR's 1.0 of its 15-5, 10-10 and 5-15 runs; the other weights stay the
# abr-mma config's, so the two rows differ by ARD alone.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_abr-mma_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(distill=dict(ard=1.0, ard_gamma=1.0))
