# Upper bound: one model trained on all three classes with every label
# (configs/kitti's recipe), evaluated with the same old / new split. The
# labels follow the student's order (vehicle 0, pedestrian 1, cyclist 2),
# not kitti_yolo's (pedestrian, cyclist, vehicle), in every split, so its
# checkpoint, predictions and per-class rows line up with the steps'.
_base_ = ('../../../configs/kitti/'
          'faster-rcnn_mobilenetv2_fpn-128_48e_kitti-yolo.py')

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

classes = ('vehicle', 'pedestrian', 'cyclist')

model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse'),
        bbox_head=dict(num_classes=len(classes))))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=classes,
        dataset={{_base_.train_dataloader.dataset}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=classes,
        dataset={{_base_.val_dataloader.dataset}}))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassSubsetDataset',
        classes=classes,
        dataset={{_base_.test_dataloader.dataset}}))

val_evaluator = [
    dict(type='IncrementalVOCMetric', old_classes=('vehicle', )),
    dict(type='CocoMetric', metric='bbox', classwise=True),
]
test_evaluator = val_evaluator
