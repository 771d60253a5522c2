# TFA step 3, baseline "FRCN+ft-full": fine-tune the whole detector (plain
# fc head) on K=1 annotated instance per class (base and novel, as TFA's
# balanced fine-tuning set), starting from the surgery checkpoint:
#   python tools/model_converters/fewshot_surgery.py \
#       work_dirs/bccd_fewshot/base/epoch_8.pth \
#       work_dirs/bccd_fewshot/base/surgery_random.pth \
#       --classes RBC WBC Platelets --init random
_base_ = '../bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

shots = 1
max_iters = 160

load_from = 'work_dirs/bccd_fewshot/base/surgery_random.pth'

model = dict(
    # The fast RoI path, as in base training (same numbers, less CPU time).
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='TorchvisionRoIExtractor', backend='sparse')),
    # The other cells of the K-shot images (ignored instances) are left out
    # of the RPN's and the RoI head's negatives. As background (TFA's rule,
    # ignore_iof_thr=-1) they outnumber the K positives of their own class
    # on a smear: 1-shot cosine fine-tuning scored background >= 0.99 on
    # its own WBC and platelet training boxes (README).
    # IgnoreNegativesAssigner: the ignore regions take away negatives only
    # (mmdet's MaxIoUAssigner also dropped a picked platelet's own anchors
    # and proposals where it lies on an unpicked RBC; session 21 review).
    train_cfg=dict(
        rpn=dict(assigner=dict(type='IgnoreNegativesAssigner',
                               ignore_iof_thr=0.5)),
        rcnn=dict(assigner=dict(type='IgnoreNegativesAssigner',
                                ignore_iof_thr=0.5))))

# KShotDataset: exactly `shots` instances per class, drawn with `seed`
# (override with --cfg-options train_dataloader.dataset.seed=1); the split
# goes to `split_file` ({shots} and {seed} are filled in) and is read back
# from there when it exists. Instances outside the split stay as ignored
# instances, left out of the negatives by the assigners above (TFA makes
# them background).
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='KShotDataset',
        shots=shots,
        seed=0,
        split_file='work_dirs/bccd_fewshot/splits/{shots}shot_seed{seed}.json',
        dataset={{_base_.train_dataloader.dataset}}))

# A K-shot set has 2-30 images: iterations, not epochs. Not tuned yet.
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=20),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.005))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
