# ABR as published (Liu et al. ICCV 2023: box replay with inclusive
# classification and distillation, `--uce --dist_type id`), less its
# Attentive RoI Distillation (the abr-ard config adds it): the
# abr config's replay plus the mma config's terms (MMA's unbiased
# classification and distillation, ILOD's box-delta distillation). A
# replayed RBC box is a labelled RBC, so its RoIs get plain cross-entropy.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_abr_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

model = dict(
    distill=dict(cls=1.0, reg=1.0, cls_mode='unbiased'),
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='UnbiasedCrossEntropyLoss',
                num_old_classes=1))))  # len(old_classes): RBC
