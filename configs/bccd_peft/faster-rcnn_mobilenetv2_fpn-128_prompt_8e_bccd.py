# Prompts for a frozen ConvNet: a learned 30-pixel input padding prompt
# (Bahng et al. 2022) added to the normalised 640x480 image, and
# zero-initialised depth-wise 3x3 prompt blocks (Pro-tuning, Nie et al.
# 2022) added to the outputs of MobileNetV2's layer2-7 (layer1 is frozen by
# frozen_stages=1). The box head is treated as in the LoRA r4 config (LoRA
# r4 on the two random, frozen shared FCs; FPN, RPN head, fc_cls and fc_reg
# train), so only the backbone's adaptation differs. Neither prompt folds
# into a plain model.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    lora=dict(target_modules=r'roi_head\.bbox_head\.shared_fcs\.\d+'),
    prompt=dict(
        input=dict(mode='padding', size=(480, 640), width=30),
        features=dict(target_modules=r'backbone\.layer[2-7]', kind='block')))
