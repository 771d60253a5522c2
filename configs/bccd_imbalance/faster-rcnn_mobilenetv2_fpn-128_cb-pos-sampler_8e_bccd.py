# The CPU-sized BCCD config with ClassBalancedPosSampler in the R-CNN stage:
# a BCCD image holds ~12 RBC against ~1 WBC and ~1 platelet, so mmdet's
# RandomSampler fills the 128 positive RoI slots mostly with RBC. Here every
# class present in the image gets an equal share of the positive slots.
# Everything else (data, schedule, seed handling) is the baseline's, for a
# like-for-like comparison with configs/bccd/...-128_8e_bccd.py.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(
                type='ClassBalancedPosSampler',
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True))))
