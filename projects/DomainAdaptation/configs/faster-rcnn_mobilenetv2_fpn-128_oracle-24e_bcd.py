# Oracle of issue 21 (the upper bound): the same model trained on the
# labelled bcd training part (the split's train.txt) and tested on its
# test part. bcd has 70 training images: 8 epochs are ~140 iterations at
# batch 4.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_source-only-8e_bccd-to-bcd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.DomainAdaptation.domain_adaptation'],
    allow_failed_imports=False)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SeededSplitDataset',
        dataset=dict(_base_.target_dataset,
                     pipeline=_base_.train_pipeline),
        part='train',
        **_base_.bcd_split))
val_dataloader = _base_.test_dataloader
val_evaluator = _base_.test_evaluator
