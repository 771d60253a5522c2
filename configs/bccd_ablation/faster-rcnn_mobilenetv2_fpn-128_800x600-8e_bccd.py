# Lever: input 800x600 instead of the native 640x480 (1.56x the pixels):
# platelets grow from about 20 to 25 px. Else as the BCCD config, but:
# - gradients are clipped at norm 35 (as the demo and balloon configs):
#   without it, seed 0 diverged in the warm-up (loss 2.8x its low at
#   iteration 42, gradient norm 159 against 5 at the lowest loss, NaN at
#   iteration 47; the training-health hook stopped it). A normal step's norm
#   is far below 35, so the clip acts only on spikes (health.json counts
#   the clipped steps);
# - it checkpoints every epoch (keeping the newest), so a cut run of about
#   2 CPU hours resumes where it stopped.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

img_scale = (800, 600)
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(
            type='RandomFlip',
            prob=[0.25, 0.25, 0.25],
            direction=['horizontal', 'vertical', 'diagonal']),
        dict(type='PackDetInputs')
    ]))
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
