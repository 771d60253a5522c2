# LoRA r4 within a 5 % budget: the LoRA r4 config with the FPN's 3x3
# output convolutions and the RPN's shared 3x3 convolution also frozen and
# adapted by LoRA r4 instead of trained in full (they are 0.74M of LoRA r4's
# 1.05M trainable parameters). The FPN's lateral 1x1 convolutions, which
# map the frozen ImageNet features into the pyramid, the RPN's objectness /
# delta convolutions and fc_cls / fc_reg still train in full. Everything
# LoRA touches is linear, so the whole update merges into a plain model.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    lora=dict(
        target_modules=r'backbone\.(layer[2-7]\.\d+\.(expand|linear)_conv'
        r'|conv2)\.conv|roi_head\.bbox_head\.shared_fcs\.\d+'
        r'|neck\.fpn_convs\.\d+\.conv|rpn_head\.rpn_conv'),
    freeze=dict(
        frozen='.*',
        trainable=[
            'neck.lateral_convs', 'rpn_head.rpn_cls', 'rpn_head.rpn_reg',
            'bbox_head.fc_cls', 'bbox_head.fc_reg'
        ]))
