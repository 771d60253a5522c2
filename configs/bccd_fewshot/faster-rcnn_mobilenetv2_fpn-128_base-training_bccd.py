# TFA step 1 (Wang et al. 2020, "Frustratingly Simple Few-Shot Object
# Detection"): base training on the base class only. BCCD split: RBC is the
# base class, WBC and Platelets are novel. As TFA, base training uses the
# plain fc head; the cosine head comes in at fine-tuning.
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

base_classes = ('RBC', )

# The plugin's fast RoI path (configs/speed): RoIAlign as one sparse matrix
# product, the same numbers as mmcv's RoIAlign (1e-5) in less CPU time; the
# fine-tuning configs use it too. The extractor has no parameters, so
# checkpoints are the same as with mmdet's SingleRoIExtractor.
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse'),
        bbox_head=dict(num_classes=len(base_classes))))

# ClassSubsetDataset relabels RBC to 0 and keeps WBC / platelet boxes only
# as ignored instances: with the default assigner (ignore_iof_thr=-1) they
# are background, as in TFA, where novel annotations are absent from base
# training.
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
