# Lever: GIoU loss on the decoded boxes of the R-CNN head, as mmdet's
# faster-rcnn_r50_fpn_giou_1x_coco.py (loss weight 10). Else as the BCCD
# config.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        bbox_head=dict(
            reg_decoded_bbox=True,
            loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=10.0))))
