# Lever: anchors half the size (scale 4: 16 px at stride 4 up to 256 px at
# stride 64). Platelets are about 20 px at 640x480, the size the stock
# scale 8 (32 px) misses most. Else as the BCCD config.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(rpn_head=dict(anchor_generator=dict(scales=[4])))
