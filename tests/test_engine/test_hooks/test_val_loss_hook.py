"""ValLossHook: the training loss terms on validation batches."""
import copy
import logging
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub, MMLogger
from mmengine.structures import InstanceData

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine import ValLossHook
from rcnn_plugin.engine.hooks.val_samples import (
    gt_in_original_frame,
    to_input_frame,
)

from conftest import REPO, TINY_CONFIG

DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
# The training pipeline without its flip: annotations before Resize, so
# the ground truth is in the input frame as in training.
TRAIN_NO_AUG = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='PackDetInputs')
]


@pytest.fixture(scope='module')
def setup(synthetic_cells, tmp_path_factory):
    register_all_modules()
    path = tmp_path_factory.mktemp('val_loss') / 'tiny.py'
    path.write_text(TINY_CONFIG.format(base=DEMO, data_root=synthetic_cells))
    cfg = Config.fromfile(str(path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    ref_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    ref_cfg.pipeline = TRAIN_NO_AUG
    return model, val_set, DATASETS.build(ref_cfg)


def _runner(model, dataset):
    return SimpleNamespace(model=model,
                           val_dataloader=SimpleNamespace(dataset=dataset),
                           message_hub=MessageHub.get_instance('val_loss'))


def _val_terms(hook, model, val_set, empty_first=False):
    batch = pseudo_collate([val_set[i] for i in range(2)])
    runner = _runner(model, val_set)
    hook.before_val(runner)
    hook.before_val_iter(runner, 0, batch)
    with torch.no_grad():
        outputs = model.val_step(batch)
    if empty_first:
        gt = outputs[0].gt_instances
        outputs[0].gt_instances = gt[torch.zeros(len(gt), dtype=bool)]
    torch.manual_seed(123)
    terms = hook.batch_loss(model, batch, outputs)
    captured = len(hook._captured)
    hook.after_val(runner)
    return terms, captured


def _train_terms(model, ref_set, empty_first=False):
    batch = pseudo_collate([ref_set[i] for i in range(2)])
    if empty_first:
        sample = batch['data_samples'][0]
        gt = sample.gt_instances
        sample.gt_instances = gt[torch.zeros(len(gt), dtype=bool)]
    torch.manual_seed(123)
    with torch.no_grad():
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        _, log_vars = model.parse_losses(losses)
    return {k: float(v) for k, v in log_vars.items()}


@pytest.mark.parametrize('reuse', [True, False])
@pytest.mark.parametrize('empty_first', [False, True])
def test_val_loss_equals_training_loss(setup, reuse, empty_first):
    """Same images, same seed: model.loss in eval mode without
    augmentation gives the same terms as the hook."""
    model, val_set, ref_set = setup
    assert gt_in_original_frame(val_set)
    assert not gt_in_original_frame(ref_set)
    hook = ValLossHook(reuse_features=reuse)
    terms, captured = _val_terms(hook, model, val_set, empty_first)
    assert captured == (1 if reuse else 0)
    expected = _train_terms(model, ref_set, empty_first)
    assert set(terms) == set(expected) >= {
        'loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
        'acc'}
    for key, value in expected.items():
        assert terms[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    # The frame matters: the same boxes left in the original frame give
    # other regression terms.
    hook._original = False
    batch = pseudo_collate([val_set[i] for i in range(2)])
    with torch.no_grad():
        outputs = model.val_step(batch)
    torch.manual_seed(123)
    wrong = hook.batch_loss(model, batch, outputs)
    assert wrong['loss_rpn_bbox'] != pytest.approx(
        expected['loss_rpn_bbox'], rel=1e-3)


def test_torch_rng_left_as_found(setup):
    """The samplers draw from a fork: training's random stream is the
    same with and without the hook."""
    model, val_set, _ = setup
    batch = pseudo_collate([val_set[0]])
    with torch.no_grad():
        outputs = model.val_step(batch)
    torch.manual_seed(7)
    state = torch.get_rng_state()
    terms = ValLossHook(reuse_features=False).batch_loss(model, batch,
                                                         outputs)
    assert terms['loss'] > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_samples_without_gt_warn_once_and_give_no_loss(setup, caplog):
    model, val_set, _ = setup
    hook = ValLossHook()
    runner = _runner(model, val_set)
    hook.before_val(runner)
    batch = pseudo_collate([val_set[0]])
    with torch.no_grad():
        outputs = model.val_step(batch)
    del outputs[0].gt_instances
    for _ in range(2):
        hook.after_val_iter(runner, 0, batch, outputs)
    assert hook._warned and hook._count == 0
    metrics = {'coco/bbox_mAP': 0.5}
    hook.after_val_epoch(runner, metrics)
    assert metrics == {'coco/bbox_mAP': 0.5}
    assert hook.batch_loss(model, batch, outputs) is None
    # Nothing predicted, nothing to add.
    hook.after_val_iter(runner, 1, batch, [])
    assert hook._count == 0


def test_mask_head_without_gt_masks_is_explained():
    hook = ValLossHook()
    sample = DetDataSample(metainfo=dict(img_shape=(8, 8),
                                         ori_shape=(8, 8)))
    sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                       labels=torch.zeros(0).long())
    model = SimpleNamespace(with_mask=True)
    assert 'mask head' in hook._unusable(model, [sample])
    # packed by PackDetInputs without LoadAnnotations: no boxes at all
    sample.gt_instances = InstanceData()
    assert 'loads no annotations' in hook._unusable(model, [sample])
    sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                       labels=torch.zeros(0).long())
    sample.set_metainfo(dict(img_shape=(16, 16)))
    assert 'scale_factor' in hook._unusable(SimpleNamespace(), [sample])


def test_after_val_epoch_publishes_one_value_per_evaluation():
    hook = ValLossHook()
    hub = MessageHub.get_instance('val_loss_publish')
    for value in (9.0, 9.0, 9.0):  # earlier evaluations
        hub.update_scalar('val/loss', value)
    hook._sums, hook._count = dict(loss=6.0, loss_cls=3.0, acc=150.0), 3
    metrics = {'coco/bbox_mAP': 0.1}
    hook.after_val_epoch(SimpleNamespace(message_hub=hub), metrics)
    assert metrics == {'coco/bbox_mAP': 0.1, 'val/loss': 2.0,
                       'val/loss_cls': 1.0, 'val/acc': 50.0}
    # The logger averages a window of 'loss' scalars: only this one.
    assert hub.get_scalar('val/loss').mean(10) == 2.0
    assert hub.get_scalar('val/acc').current() == 50.0


def test_an_evaluation_without_metrics_stays_empty():
    # CocoMetric gives {} when nothing was detected; mmengine's
    # CheckpointHook skips that, but with val/loss added it took val/loss
    # as save_best='auto' for the rest of the run.
    from mmengine.hooks import CheckpointHook

    from conftest import logged_messages
    hook = ValLossHook()
    hub = MessageHub.get_instance('val_loss_empty')
    hook._sums, hook._count = dict(loss=6.0), 3
    runner = SimpleNamespace(message_hub=hub, epoch=1, iter=10,
                             logger=MMLogger.get_current_instance())
    metrics = {}
    with logged_messages(logging.WARNING) as messages:
        hook.after_val_epoch(runner, metrics)
    assert metrics == {} and hub.get_scalar('val/loss').current() == 2.0
    assert any('gave no metrics' in m for m in messages)
    best = CheckpointHook(save_best='auto')
    best.after_val_epoch(runner, metrics)  # skipped, nothing resolved
    assert best.key_indicators == ['auto']


def test_to_input_frame_scales_boxes_and_masks_copies():
    masks = np.zeros((1, 20, 40), np.uint8)
    masks[0, 5:10, 10:20] = 1
    gt = InstanceData(bboxes=HorizontalBoxes(torch.tensor([[10., 5, 20,
                                                            10]])),
                      labels=torch.tensor([1]),
                      masks=BitmapMasks(masks, 20, 40))
    sample = DetDataSample(metainfo=dict(
        scale_factor=(2.0, 3.0), img_shape=(60, 80), ori_shape=(20, 40)))
    sample.gt_instances = gt
    sample.pred_instances = InstanceData(bboxes=torch.zeros(2, 4))
    sample.proposals = InstanceData(bboxes=torch.ones(3, 4))
    out = to_input_frame(sample, original=True)
    assert torch.equal(out.gt_instances.bboxes.tensor,
                       torch.tensor([[20., 15, 40, 30]]))
    assert out.gt_instances.masks.masks.shape == (1, 60, 80)
    assert out.gt_instances.masks.masks.sum() == 10 * 15 * 2
    assert 'pred_instances' not in out
    out.proposals.pop('bboxes')  # as the RoI head does
    assert 'bboxes' in sample.proposals
    assert torch.equal(sample.gt_instances.bboxes.tensor,
                       torch.tensor([[10., 5, 20, 10]]))
    same = to_input_frame(sample, original=False)
    assert torch.equal(same.gt_instances.bboxes.tensor,
                       sample.gt_instances.bboxes.tensor)
    assert same.gt_instances is not sample.gt_instances


def test_gt_frame_from_pipeline_order():
    def pipeline(*names):
        steps = [type(n, (), {})() for n in names]
        return SimpleNamespace(pipeline=SimpleNamespace(transforms=steps))

    assert gt_in_original_frame(pipeline('LoadImageFromFile', 'Resize',
                                         'LoadAnnotations'))
    assert not gt_in_original_frame(pipeline('LoadImageFromFile',
                                             'LoadAnnotations', 'Resize'))
    # Fast R-CNN: Resize inside ProposalBroadcaster, then annotations.
    broadcaster = type('ProposalBroadcaster', (), {})()
    broadcaster.transforms = SimpleNamespace(
        transforms=[type('Resize', (), {})()])
    loader = type('LoadAnnotations', (), {})()
    wrapped = SimpleNamespace(dataset=SimpleNamespace(
        pipeline=SimpleNamespace(transforms=[broadcaster, loader])))
    assert gt_in_original_frame(wrapped)
    assert gt_in_original_frame(SimpleNamespace())  # no pipeline: mmdet's


BALLOON = osp.join(REPO, '..', 'shared', 'datasets', 'balloon')


def test_mask_rcnn_val_loss_equals_training_loss():
    """Mask R-CNN on two real balloon images: polygons in the original
    frame are resized to the input with the boxes."""
    if not osp.isfile(osp.join(BALLOON, 'val', 'via_region_data.json')):
        pytest.skip(f'balloon data not found at {osp.abspath(BALLOON)}')
    from conftest import shrink_model
    register_all_modules()
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'balloon',
        'mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py'))
    torch.manual_seed(0)
    model = MODELS.build(shrink_model(cfg.model))
    model.init_weights()
    model.eval()
    val_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    val_cfg.update(data_root=BALLOON + '/', indices=2)
    val_cfg.pipeline[1].scale = (128, 128)
    val_set = DATASETS.build(val_cfg)
    ref_cfg = copy.deepcopy(val_cfg)
    ref_cfg.pipeline = [val_cfg.pipeline[i] for i in (0, 2, 1, 3)]
    ref_set = DATASETS.build(ref_cfg)
    terms, _ = _val_terms(ValLossHook(), model, val_set)
    expected = _train_terms(model, ref_set)
    assert 'loss_mask' in terms
    for key, value in expected.items():
        assert terms[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_half_precision_validation(setup):
    """ValLoop(fp16=True) predicts under autocast (bfloat16 on CPU): the
    reused features are half, so the loss runs under autocast too."""
    from mmengine.runner.amp import autocast
    model, val_set, _ = setup
    runner = _runner(model, val_set)
    runner.val_loop = SimpleNamespace(fp16=True)
    hook = ValLossHook()
    hook.before_val(runner)
    batch = pseudo_collate([val_set[0]])
    hook.before_val_iter(runner, 0, batch)
    with torch.no_grad(), autocast(enabled=True):
        outputs = model.val_step(batch)
    assert hook._captured[0][1][0].dtype != torch.float32
    terms = hook.batch_loss(model, batch, outputs)
    hook.after_val(runner)
    assert np.isfinite(list(terms.values())).all() and terms['loss'] > 0


def test_fast_rcnn_val_loss_uses_the_proposals():
    """Fast R-CNN: RoI losses on the samples' proposals (one image has
    none), equal to model.loss; the proposals are not consumed."""
    from mmdet.testing import demo_mm_inputs
    from test_configs import add_demo_proposals

    from conftest import shrink_model
    register_all_modules()
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'fast_rcnn',
        'fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py'))
    torch.manual_seed(0)
    model = MODELS.build(shrink_model(cfg.model))
    model.init_weights()
    model.eval()
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=[3, 0], num_classes=3)
    add_demo_proposals(packed, counts=[20, 0])
    with torch.no_grad():
        outputs = model.val_step(packed)
    hook = ValLossHook()
    hook._original = False
    torch.manual_seed(5)
    terms = hook.batch_loss(model, packed, outputs)
    assert not any('rpn' in k for k in terms)
    assert len(outputs[0].proposals) == 20 and 'bboxes' in outputs[0].proposals
    torch.manual_seed(5)
    with torch.no_grad():
        data = model.data_preprocessor(packed, False)
        _, expected = model.parse_losses(model(**data, mode='loss'))
    for key, value in expected.items():
        assert terms[key] == pytest.approx(float(value), rel=1e-5), key
