# Corruption-aware augmentation for driving scenes (docs/robustness.md):
# one of the four held-out corruptions of Michaelis et al. 2019 (speckle
# noise, gaussian blur, spatter, saturate), then photometric change
# (brightness, contrast, saturation, hue: mmdet's PhotoMetricDistortion
# covers dusk and low light). Fog, snow and frost are benchmark
# corruptions: training on them would hide how the model meets unseen
# weather. One
# transform (mmcv's Compose), placed right after image loading:
#   train_pipeline = [dict(type='LoadImageFromFile'),
#                     {{_base_.corruption_aug}}, ...]
corruption_aug = dict(
    type='Compose',
    transforms=[
        # RandomCorrupt takes uint8; PhotoMetricDistortion gives float32.
        dict(type='RandomCorrupt', corruptions='holdout',
             severities=[1, 2, 3], prob=0.5),
        dict(type='PhotoMetricDistortion', brightness_delta=48,
             contrast_range=(0.6, 1.4), saturation_range=(0.7, 1.3),
             hue_delta=10),
    ])
