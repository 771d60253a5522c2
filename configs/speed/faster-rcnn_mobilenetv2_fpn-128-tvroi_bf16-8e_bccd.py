# The fast RoI path plus bfloat16 autocast, on CPU or CUDA. bfloat16 needs no
# loss scaling (see BF16AmpOptimWrapper). The FP32Post* heads decode boxes
# and run NMS in float32: mmcv's CPU NMS has no bfloat16 kernel, and
# bfloat16 would round box corners near 640 px to a 4 px grid.
_base_ = './faster-rcnn_mobilenetv2_fpn-128-tvroi_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(type='FP32PostRPNHead'),
    roi_head=dict(bbox_head=dict(type='FP32PostShared2FCBBoxHead')))
optim_wrapper = dict(type='BF16AmpOptimWrapper')
