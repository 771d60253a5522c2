# Adversarial fine-tuning (docs/robustness.md): every training iteration
# trains on adversarial images made against the detector's own training
# loss, in the 0-255 pixel space before normalisation (after Zhang and
# Wang, "Towards Adversarially Robust Object Detection", ICCV 2019, who
# craft a classification and a localisation example and keep the worse;
# here one example against the chosen loss terms, the sum by default).
# Merge it over an epoch-based config with `--overlay` (tools/train.py);
# iteration-based configs set
# train_cfg.type='AdversarialIterBasedTrainLoop' instead.
# Only the train loop changes: the model, and so its checkpoints, stay the
# plain detector's, which load into the config without this overlay.
# FGSM with random start ("Fast is better than free", Wong et al., ICLR
# 2020): one attack step of 1.25 eps from uniform noise in the eps-ball,
# with BN layers in eval mode during the attack so their running statistics
# only see the training pass. eps=8 is Zhang and Wang's budget. Other
# methods: method='pgd' (steps=...) or 'free' (replays=...); target 'cls',
# 'loc' or loss keys attack part of the loss; clean_ratio is the chance
# that an image is trained clean (drawn per image, not a fixed share of
# each batch). Costs about one extra forward and backward per
# iteration (fgsm-rs).
train_cfg = dict(
    type='AdversarialEpochBasedTrainLoop',
    adversarial=dict(
        method='fgsm-rs', eps=8.0, target='sum', clean_ratio=0.0))
