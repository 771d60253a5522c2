# LoRA rank 8: everything is frozen except the LoRA adapters, the FPN, the
# RPN head and the box classifier / regressor. The adapters sit on the
# backbone's 1x1 convolutions after the frozen stem (frozen_stages=1
# freezes layer1 in train(), adapters included) and on the box head's two
# shared FCs, whose (random) base weights stay frozen: they are 7.4M of
# the model's 10.6M parameters.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    type='PEFTDetector',
    detector_type='FasterRCNN',
    lora=dict(
        rank=8,
        alpha=16,
        dropout=0.0,
        target_modules=r'backbone\.(layer[2-7]\.\d+\.(expand|linear)_conv'
        r'|conv2)\.conv|roi_head\.bbox_head\.shared_fcs\.\d+'),
    freeze=dict(
        frozen='.*',
        trainable=['neck', 'rpn_head', 'bbox_head.fc_cls',
                   'bbox_head.fc_reg']))

custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook'),
    dict(type='AdapterCheckpointHook', save_base=True)
]
