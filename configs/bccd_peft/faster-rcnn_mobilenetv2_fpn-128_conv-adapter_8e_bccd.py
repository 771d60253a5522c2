# Conv-Adapter (Chen et al., CVPR-W 2024): a depth-wise separable bottleneck
# (3x3 depth-wise, 1x1 down to 16 channels, ReLU, zero-initialised 1x1 up)
# beside every MobileNetV2 block after the frozen stem (layer2-7; layer1 stays
# frozen by frozen_stages=1, without adapters, as in the LoRA configs). The
# box head is treated as in the LoRA r4 config (LoRA r4 on the two random,
# frozen shared FCs; FPN, RPN head, fc_cls and fc_reg train), so only the
# backbone's adaptation differs. With a ReLU the adapters cannot be merged.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    lora=dict(target_modules=r'roi_head\.bbox_head\.shared_fcs\.\d+'),
    conv_adapter=dict(
        target_modules=r'backbone\.layer[2-7]\.\d+',
        bottleneck=16,
        kernel_size=3,
        act='ReLU',
        placement='parallel'))
