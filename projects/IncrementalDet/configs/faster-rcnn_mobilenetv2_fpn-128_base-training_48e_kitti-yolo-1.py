# kitti_yolo 1+2 (issue 19), step 1: the previous model, vehicle only. The
# kitti_yolo recipe (native 1242x375, batch 4, lr 0.01, 48 epochs) on the
# vehicle labels; pedestrians and cyclists are background, as the RBC base
# model of configs/bccd_fewshot treats WBC and Platelets. The teacher of
# every kitti_yolo 1+2 step (_base_/incremental-step_kitti-yolo-1-2.py).
_base_ = ('../../../configs/kitti/'
          'faster-rcnn_mobilenetv2_fpn-128_48e_kitti-yolo.py')

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

base_classes = ('vehicle', )

# The plugin's fast RoI path, as the BCCD base model and the steps (no
# parameters: the same checkpoint keys as mmdet's SingleRoIExtractor).
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse'),
        bbox_head=dict(num_classes=len(base_classes))))

# ClassSubsetDataset relabels vehicle to 0 (kitti_yolo's label 2) and keeps
# pedestrian / cyclist boxes only as ignored instances (label -1): with the
# default assigner (ignore_iof_thr=-1) they are background. The checkpoint's
# dataset_meta.classes is ('vehicle',), the steps' old_classes.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=base_classes,
        dataset={{_base_.train_dataloader.dataset}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=base_classes,
        dataset={{_base_.val_dataloader.dataset}}))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=base_classes,
        dataset={{_base_.test_dataloader.dataset}}))
