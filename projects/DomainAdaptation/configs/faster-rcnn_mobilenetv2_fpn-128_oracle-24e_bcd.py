# Oracle of issue 21 (the upper bound): the same model trained on the
# labelled bcd training part (the split's train.txt) and tested on its
# test part. bcd has 70 training images, ~18 iterations an epoch at batch
# 4: the source's 8-epoch schedule (100 warm-up iterations, decay after
# epoch 6) would give it ~8 iterations at full lr, so the oracle trains 24
# epochs (~430 iterations) with a 50-iteration warm-up and one decay after
# epoch 18. It does not validate: the only held-out part is the test part,
# and choosing anything on it would leak into the upper bound.
# bcd labels only RBC and WBC, so the oracle detects those two classes: a
# Platelets row that never sees an instance cannot be learnt (the config
# doctor stops such a run before the first iteration), and the bcd test
# mAP@0.5 averages RBC and WBC for every row of the table anyway.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_source-only-8e_bccd-to-bcd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.DomainAdaptation.domain_adaptation'],
    allow_failed_imports=False)

oracle_classes = ('RBC', 'WBC')
model = dict(roi_head=dict(bbox_head=dict(num_classes=len(oracle_classes))))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SeededSplitDataset',
        dataset=dict(_base_.target_dataset,
                     metainfo=dict(classes=oracle_classes),
                     pipeline=_base_.train_pipeline),
        part='train',
        **_base_.bcd_split))
max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[18], gamma=0.1)
]
test_dataloader = dict(
    dataset=dict(dataset=dict(metainfo=dict(classes=oracle_classes))))
val_dataloader = None
val_cfg = None
val_evaluator = None
