# Lever: soft-NMS (linear score decay, mmcv's soft_nms) in the
# R-CNN test step: touching red cells overlap, and hard NMS at IoU 0.5
# drops true neighbours. Test-time only: it needs no training of its own
# (tools/test.py with this config on the BCCD checkpoint).
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    test_cfg=dict(
        rcnn=dict(nms=dict(type='soft_nms', iou_threshold=0.5,
                           min_score=0.05))))
