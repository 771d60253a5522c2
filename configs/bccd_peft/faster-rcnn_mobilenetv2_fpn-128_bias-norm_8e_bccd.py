# Bias / norm tuning (BitFit plus BN affine): in the frozen backbone only
# the BN gammas and betas train (MobileNetV2's convs have no bias), with
# the BN running statistics kept (norm_eval). The box head is treated as in
# the LoRA r4 config (LoRA r4 on the two random, frozen shared FCs; FPN,
# RPN head, fc_cls and fc_reg train), so only the backbone's adaptation
# differs. A plain model: nothing to merge but LoRA.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    lora=dict(target_modules=r'roi_head\.bbox_head\.shared_fcs\.\d+'),
    freeze=dict(bias_norm=True))
