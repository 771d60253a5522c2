# Upper bound of BCCD 1+1+1, step 2: one model trained on RBC and WBC with
# all their labels (Platelets ignored, as in the step). Step 3's upper bound
# is BCCD 1+2's joint-training config (all three classes).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_joint-training_8e_bccd-1-2.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.IncrementalDet.incremental_det'],
    allow_failed_imports=False)

classes = ('RBC', 'WBC')

model = dict(roi_head=dict(bbox_head=dict(num_classes=len(classes))))

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
