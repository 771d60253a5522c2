"""class_prototypes against embeddings computed by hand."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rcnn_plugin.models import class_prototypes

from conftest import REPO, shrink_model

CONFIG = (f'{REPO}/configs/bccd_fewshot/'
          'faster-rcnn_mobilenetv2_fpn-128_cos_fine-tuning_1shot_bccd.py')


@pytest.fixture(scope='module')
def model():
    register_all_modules()
    torch.manual_seed(0)
    det = MODELS.build(shrink_model(Config.fromfile(CONFIG).model))
    det.init_weights()
    return det.eval()


def _embed(model, inputs, bboxes):
    """Shared2FC embedding of one box, written out."""
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        ext = model.roi_head.bbox_roi_extractor
        x = ext(feats[:ext.num_inputs], bbox2roi([bboxes])).flatten(1)
        for fc in model.roi_head.bbox_head.shared_fcs:
            x = torch.relu(fc(x))
    return x


@pytest.mark.slow
def test_matches_hand_computed_means(model):
    batch = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2,
                           num_items=[3, 0], num_classes=3)
    protos, counts = class_prototypes(model, [batch], num_classes=3)
    data = model.data_preprocessor(batch, False)
    gt = data['data_samples'][0].gt_instances
    emb = F.normalize(_embed(model, data['inputs'][:1], gt.bboxes), dim=1)
    for c in range(3):
        sel = gt.labels == c
        assert counts[c] == sel.sum()
        want = emb[sel].mean(0) if sel.any() else torch.zeros(emb.shape[1])
        torch.testing.assert_close(protos[c], want, rtol=1e-4, atol=1e-5)


def test_errors(model):
    empty = demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 64)],
                           num_items=[0], num_classes=3)
    with pytest.raises(ValueError, match='no GT boxes'):
        class_prototypes(model, [empty], num_classes=3)
    batch = demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 64)],
                           num_items=[4], num_classes=3)
    batch['data_samples'][0].gt_instances.labels[:] = 5
    with pytest.raises(ValueError, match='outside'):
        class_prototypes(model, [batch], num_classes=3)
    model.train()
    try:  # BN statistics would move while averaging
        with pytest.raises(ValueError, match='eval mode'):
            class_prototypes(model, [batch], num_classes=3)
    finally:
        model.eval()
