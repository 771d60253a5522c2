# TFA step 3, "TFA w/ cos": scaled-cosine classifier (scale 20, background
# row included), everything frozen except the last layers (fc_cls, fc_reg),
# on K=1 instance per class. Surgery checkpoint:
#   python tools/model_converters/fewshot_surgery.py \
#       work_dirs/bccd_fewshot/base/epoch_8.pth \
#       work_dirs/bccd_fewshot/base/surgery_cos_random.pth \
#       --classes RBC WBC Platelets --cosine --init random
# (or --init prototype --config THIS_CONFIG for prototype rows).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_full-fine-tuning_1shot_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

load_from = 'work_dirs/bccd_fewshot/base/surgery_cos_random.pth'

model = dict(
    # requires_grad off and BN in eval mode for conv1 and layer1-7
    # (norm_eval=True comes from the base config).
    backbone=dict(frozen_stages=7),
    roi_head=dict(
        bbox_head=dict(type='CosineSimBBoxHead', scale=20.0,
                       learn_scale=False)))

# lr_mult=0 (and decay_mult=0) freezes what frozen_stages does not reach
# (MobileNetV2's conv2, the FPN, the RPN and the shared fcs): SGD then
# moves only fc_cls and fc_reg. TFA fine-tunes the last layer at a higher
# rate than full fine-tuning.
frozen = dict(lr_mult=0.0, decay_mult=0.0)
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': frozen,
            'neck': frozen,
            'rpn_head': frozen,
            'roi_head.bbox_head.shared_fcs': frozen,
        }))
