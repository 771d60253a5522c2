# Source-only baseline of issue 21: the BCCD model of configs/bccd trained
# on BCCD (640x480 JPEG, VOC XML) and tested on the target domain, bcd
# (another lab's 256x256 RGBA PNG smears, a CSV of normalised boxes). The
# other configs of this folder inherit the target datasets defined here.
_base_ = '../../../configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(
    imports=['rcnn_plugin', 'projects.DomainAdaptation.domain_adaptation'],
    allow_failed_imports=False)

source_classes = ('RBC', 'WBC', 'Platelets')
bcd_root = '../shared/datasets/bcd/'
# The seeded split of bcd, written here on first use (train.txt: the
# unlabelled target / oracle training part; val.txt: the target test part).
bcd_split = dict(split_dir='data/bcd_split/', fraction=0.3, seed=0)
# bcd labels are lower case and it has no platelets: its labels are read
# as the source's classes and the absent class is only logged.
target_dataset = dict(
    type='CSVDataset',
    data_root=bcd_root,
    ann_file='annotations.csv',
    data_prefix=dict(img='images/'),
    columns=dict(image='image', xmin='xmin', ymin='ymin', xmax='xmax',
                 ymax='ymax', label='label'),
    normalized=True,
    class_map=dict(rbc='RBC', wbc='WBC'),
    metainfo=dict(classes=source_classes),
    check_classes='warn')
target_test_dataset = dict(
    type='SeededSplitDataset',
    dataset=dict(target_dataset, test_mode=True,
                 pipeline=_base_.test_pipeline),
    part='val',
    **bcd_split)

# Evaluated on the bcd test part (RBC, WBC; VOC mAP averages the classes
# that have boxes there). BCCD's own test set: configs/bccd.
test_dataloader = dict(dataset=dict(_delete_=True, **target_test_dataset))
