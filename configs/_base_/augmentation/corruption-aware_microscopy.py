# Corruption-aware augmentation for stained microscopy (docs/robustness.md):
# stain variation in HED space (Tellez et al. 2018), then one of the four
# held-out corruptions of Michaelis et al. 2019 (speckle noise, gaussian
# blur, spatter, saturate), never a benchmark one, so the corruption
# benchmark still measures unseen corruptions. One transform (mmcv's
# Compose), placed in a train pipeline right after image loading:
#   train_pipeline = [dict(type='LoadImageFromFile'),
#                     {{_base_.corruption_aug}}, ...]
corruption_aug = dict(
    type='Compose',
    transforms=[
        # Tellez et al.'s HED-light, in their optical-density scale
        dict(type='HEDJitter', sigma=0.05, bias=0.05, prob=0.5, od='tellez'),
        dict(type='RandomCorrupt', corruptions='holdout',
             severities=[1, 2, 3], prob=0.5),
    ])
