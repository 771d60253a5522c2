"""ABR's prototype box selection: the rule, the features, the tool."""
import importlib.util
import os.path as osp
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import get_test_pipeline_cfg, register_all_modules
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from projects.IncrementalDet.incremental_det.prototypes import (
    SELECTION,
    prototype_selector,
    roi_feature_maps,
    select_prototypes,
)
from projects.IncrementalDet.incremental_det.replay_hook import (
    ReplayMemoryHook,
)
from projects.IncrementalDet.incremental_det.replay_memory import (
    build_replay_memory,
    load_replay_memory,
)

from conftest import REPO


def test_select_prototypes_keeps_the_boxes_nearest_the_class_mean():
    feats = np.array([[0.0, 1.0], [1.0, 0.2], [1.0, 0.0],  # class 0
                      [1.0, 1.0], [0.0, 3.0], [1.0, 2.0]])  # class 1
    labels = [0, 0, 0, 1, 1, 1]
    # class 0's unit mean is (0.85, 0.53): (1, 0.2) is nearest, then
    # (1, 0), and the first box, (0, 1), goes (a first-k rule keeps it);
    # class 1's (0.52, 0.86): (1, 2), then (1, 1), then (0, 3)
    assert select_prototypes(feats, labels, 2, budget=2) == [1, 2, 3, 5]
    assert select_prototypes(feats, labels, 2, budget=1) == [1, 5]
    assert select_prototypes(feats, labels, 2, budget=3) == list(range(6))
    # the scale of a map does not matter, only its direction: a box 100x
    # larger is still the nearest (a whole-array norm would not say so)
    scaled = feats.copy()
    scaled[1] *= 100
    assert select_prototypes(scaled, labels, 2, budget=1) == [1, 5]
    assert select_prototypes(np.zeros((0, 4)), [], 2, budget=3) == []
    with pytest.raises(ValueError, match='budget'):
        select_prototypes(feats, labels, 2, budget=-1)


class _Cells(BaseDataset):
    METAINFO = dict(classes=('RBC', 'WBC'))

    def __init__(self, images, **kwargs):
        self.images = images
        super().__init__(**kwargs)

    def load_data_list(self):
        return [dict(img_path=p, img_id=i, instances=[
            dict(bbox=box, bbox_label=label, ignore_flag=0)
            for label, box in boxes]) for i, (p, boxes) in
            enumerate(self.images)]


@pytest.fixture
def cells(tmp_path):
    rng = np.random.RandomState(0)
    images = []
    for i in range(2):
        path = str(tmp_path / f'img{i}.png')
        mmcv.imwrite(rng.randint(0, 256, (96, 128, 3), dtype=np.uint8), path)
        images.append((path, [(0, [4., 4., 30., 28.]), (0, [60., 40., 90.,
                                                          70.]),
                              (0, [10., 50., 40., 90.]),
                              (1, [70., 5., 120., 35.])]))
    return _Cells(images)


def test_build_replay_memory_uses_a_selector_and_records_it(tmp_path,
                                                            cells):
    def first_two(boxes, num_classes, budget):
        assert (num_classes, budget) == (2, 2)
        return [i for i, b in enumerate(boxes) if b['label'] == 1] + [0, 1]
    first_two.description = 'the first two'
    out = str(tmp_path / 'memory')
    build_replay_memory(cells, out, budget=2, select=first_two)
    memory = load_replay_memory(out)
    assert memory.selection == 'the first two'
    assert sorted(c['box'] for c in memory.crops if c['label'] == 0) == [
        [4., 4., 30., 28.], [60., 40., 90., 70.]]
    assert load_replay_memory(
        build_replay_memory(cells, out, budget=2).root).selection != \
        'the first two'


@pytest.fixture
def tiny(tiny_config):
    register_all_modules()
    cfg = Config.fromfile(tiny_config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return cfg, model


def test_roi_feature_maps_per_box(cells, tiny):
    cfg, model = tiny
    model.train()
    boxes = [dict(source=p, box=box, label=label)
             for p, inst in cells.images for label, box in inst]
    maps = roi_feature_maps(model, get_test_pipeline_cfg(cfg), boxes)
    side = cfg.model.roi_head.bbox_roi_extractor.roi_layer.output_size
    assert maps.shape == (8, side * side) and np.isfinite(maps).all()
    assert model.training  # restored
    # the same box gives the same map, another box another one
    again = roi_feature_maps(model, get_test_pipeline_cfg(cfg), boxes[:1])
    assert np.allclose(again[0], maps[0], atol=1e-5)
    assert not np.allclose(maps[0], maps[1])
    select = prototype_selector(model, get_test_pipeline_cfg(cfg))
    assert select.description == SELECTION
    kept = select(boxes, 2, 1)
    assert len(kept) == 2 and {boxes[i]['label'] for i in kept} == {0, 1}
    assert select(boxes, 2, 10) == list(range(8))  # nothing to choose


def test_roi_feature_maps_scale_boxes_into_the_resized_image(cells, tiny):
    """A resize that scales width and height differently (128x96 to
    200x48): each map is the extractor's output at the box times
    (w_scale, h_scale), averaged over channels."""
    cfg, model = tiny
    model.eval()
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(200, 48), keep_ratio=False),
                dict(type='PackDetInputs', meta_keys=(
                    'img_id', 'img_shape', 'ori_shape', 'scale_factor'))]
    path, inst = cells.images[0]
    boxes = [dict(source=path, box=box, label=label) for label, box in inst]
    maps = roi_feature_maps(model, pipeline, boxes)
    img = mmcv.imresize(mmcv.imread(path), (200, 48))
    inputs = torch.from_numpy(img).permute(2, 0, 1).float()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[inputs]), False)
        feats = model.extract_feat(data['inputs'])
        xyxy = torch.tensor([b['box'] for b in boxes]) * torch.tensor(
            [200 / 128, 48 / 96] * 2)
        rois = torch.cat([torch.zeros(len(boxes), 1), xyxy], 1)
        extractor = model.roi_head.bbox_roi_extractor
        want = extractor(feats[:extractor.num_inputs], rois).mean(1)
    np.testing.assert_allclose(maps, want.flatten(1).numpy(), atol=1e-5)


def test_hook_selects_prototypes_with_the_trained_model(tmp_path, cells,
                                                        tiny):
    cfg, model = tiny
    hook = ReplayMemoryHook(budget=1, select='mean')
    runner = SimpleNamespace(work_dir=str(tmp_path / 'work'), hooks=[],
                             model=model, cfg=cfg,
                             train_dataloader=SimpleNamespace(dataset=cells))
    hook.before_train(runner)
    hook.after_train(runner)
    memory = load_replay_memory(osp.join(runner.work_dir, 'replay_memory'))
    assert memory.selection == SELECTION
    assert memory.counts() == {'RBC': 1, 'WBC': 1}
    # the RBC kept is the one prototype_selector picks under this model
    boxes = [dict(source=p, box=box, label=label)
             for p, inst in cells.images for label, box in inst]
    want = prototype_selector(model, get_test_pipeline_cfg(cfg))(
        boxes, 2, 1)
    assert [c['box'] for c in memory.crops if c['label'] == 0] == [
        boxes[i]['box'] for i in want if boxes[i]['label'] == 0]
    with pytest.raises(ValueError, match="'random' or 'mean'"):
        ReplayMemoryHook(select='herding')


def test_build_tool_select_mean(tmp_path, tiny_config, tiny):
    path = osp.join(REPO, 'projects', 'IncrementalDet', 'tools',
                    'build_replay_memory.py')
    spec = importlib.util.spec_from_file_location('build_replay_memory', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _, model = tiny
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'memory')
    tool.main([tiny_config, '--out', out, '--budget', '2', '--select',
               'mean', '--checkpoint', ckpt])
    memory = load_replay_memory(out)
    assert memory.selection == SELECTION
    assert max(memory.counts().values()) == 2
    with pytest.raises(SystemExit, match='needs --checkpoint'):
        tool.main([tiny_config, '--out', out, '--select', 'mean'])
    with pytest.raises(SystemExit, match='only used by --select mean'):
        tool.main([tiny_config, '--out', out, '--checkpoint', ckpt])
    torch.save({'state_dict': {'fc.weight': torch.zeros(1)}}, ckpt)
    with pytest.raises(SystemExit, match="does not fit the config's model"):
        tool.main([tiny_config, '--out', out, '--select', 'mean',
                   '--checkpoint', ckpt])
