# BCCD Faster R-CNN trained on adversarial images (docs/robustness.md):
# FGSM with random start, eps 4 of 255 against the sum of the losses, each
# image kept clean with probability 0.5 (Zhang and Wang, ICCV 2019, train
# on adversarial images only; the clean half keeps clean accuracy on a
# dataset of 205 training images). The model and its checkpoints are the
# plain faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py ones. Fine-tune a
# trained model instead of training from ImageNet with
# --cfg-options load_from=work_dirs/bccd_fpn128_8e/epoch_8.pth.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

train_cfg = dict(
    type='AdversarialEpochBasedTrainLoop',
    adversarial=dict(
        method='fgsm-rs', eps=4.0, target='sum', clean_ratio=0.5))
