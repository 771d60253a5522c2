# Search space for tools/tune.py on BCCD (docs/tune.md), over the keys of
# configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py:
#   python tools/tune.py \
#       configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
#       --space configs/_base_/tune/space_bccd.py --metric pascal_voc/mAP \
#       --trials 12 --epochs 4 --timeout 7200
# Platelets are small (about 20 px at 640x480): smaller anchors and a larger
# input are in the space, beside the lr and the weight decay.
_resize = '.dataset.pipeline[type=Resize].scale'
space = dict(
    lr=dict(type='float', low=0.005, high=0.04, log=True,
            keys=['optim_wrapper.optimizer.lr']),
    weight_decay=dict(type='float', low=1e-5, high=1e-3, log=True,
                      keys=['optim_wrapper.optimizer.weight_decay']),
    anchor_scales=dict(type='categorical', choices=[[4], [6], [8]],
                       keys=['model.rpn_head.anchor_generator.scales']),
    img_scale=dict(type='categorical', choices=[(640, 480), (800, 600)],
                   keys=[f'{split}_dataloader{_resize}'
                         for split in ('train', 'val', 'test')]),
)
