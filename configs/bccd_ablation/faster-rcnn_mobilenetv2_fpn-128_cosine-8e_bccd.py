# Lever: cosine decay to 1 % of the lr over the 8 epochs instead of the
# x0.1 step after epoch 6 (same 100-iteration warm-up). Else as the BCCD
# config.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=8, T_max=8,
         eta_min_ratio=0.01, convert_to_iter_based=True)
]
