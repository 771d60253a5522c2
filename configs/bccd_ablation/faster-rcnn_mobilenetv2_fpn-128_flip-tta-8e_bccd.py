# Lever: test-time augmentation with the flips a smear allows (none,
# horizontal, vertical, diagonal), merged by mmdet's DetTTAModel (union,
# then NMS at IoU 0.5). Test-time only, 4x the test compute: training is the
# BCCD config's. Used by `tools/test.py CONFIG CKPT --tta`.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))

# The unflipped view first: DetTTAModel keeps the first view's sample (and
# its ground truth), and LoadAnnotations after the flips keeps the ground
# truth in the original image's pixels, as in the test pipeline.
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(640, 480), keep_ratio=True)],
            [
                dict(type='RandomFlip', prob=0.),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='vertical'),
                dict(type='RandomFlip', prob=1., direction='diagonal'),
            ],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=('img_id', 'img_path', 'ori_shape',
                               'img_shape', 'scale_factor', 'flip',
                               'flip_direction', 'instances'))
            ],
        ])
]
