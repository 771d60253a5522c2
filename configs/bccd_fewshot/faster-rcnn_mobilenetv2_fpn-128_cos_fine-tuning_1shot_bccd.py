# TFA step 3, "TFA w/ cos": scaled-cosine classifier (scale 20, background
# row included), everything frozen except the last layers (fc_cls, fc_reg,
# and the RPN's rpn_cls, rpn_reg), on K=1 instance per class. Surgery
# checkpoint:
#   python tools/model_converters/fewshot_surgery.py \
#       work_dirs/bccd_fewshot/base/epoch_8.pth \
#       work_dirs/bccd_fewshot/base/surgery_cos_random.pth \
#       --classes RBC WBC Platelets --cosine --init random
# (or --init prototype --config THIS_CONFIG for prototype rows).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_full-fine-tuning_1shot_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

load_from = 'work_dirs/bccd_fewshot/base/surgery_cos_random.pth'

# Everything but the trainable layers is frozen: requires_grad off (so the
# backward pass stops at the last layers: a training step takes 0.48x the
# CPU time of freezing by lr_mult=0, which still computed every gradient)
# and BN statistics fixed. PEFTDetector builds the FasterRCNN and applies
# the freezing policy (configs/bccd_peft).
model = dict(
    type='PEFTDetector',
    detector_type='FasterRCNN',
    # TFA trains only fc_cls and fc_reg. On BCCD the base RPN, trained with
    # RBC as the only object, proposes 76% of the val WBCs and 1% of the
    # platelets at IoU 0.5 (the 3-class model: 100% and 99%), so the RPN's
    # last layers (rpn_cls, rpn_reg) learn too (README).
    freeze=dict(frozen='.*',
                trainable=['bbox_head.fc_cls', 'bbox_head.fc_reg',
                           'rpn_head.rpn_cls', 'rpn_head.rpn_reg']),
    # (norm_eval=True comes from the base config)
    backbone=dict(frozen_stages=7),
    roi_head=dict(
        bbox_head=dict(type='CosineSimBBoxHead', scale=20.0,
                       learn_scale=False)))

# The last layers at twice full fine-tuning's rate (not TFA's: TFA and
# mmfewshot fine-tune at lr 0.001, far below base training; not tuned).
optim_wrapper = dict(optimizer=dict(lr=0.01))
