# Head-only fine-tuning: the ImageNet MobileNetV2 backbone is frozen
# (weights and BN statistics); FPN, RPN and RoI head train as in the base.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    type='PEFTDetector',
    detector_type='FasterRCNN',
    freeze=dict(frozen='backbone'))

custom_hooks = [
    dict(type='ConfigDoctorHook'),
    dict(type='TrainingHealthHook'),
    dict(type='AdapterCheckpointHook', save_base=True)
]
