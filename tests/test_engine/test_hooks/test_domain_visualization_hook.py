"""DomainDetVisualizationHook: test drawings read as the dataset reads."""
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.config import Config
from mmengine.structures import InstanceData

import rcnn_plugin  # noqa: F401
from rcnn_plugin.engine.hooks import (
    DomainDetVisualizationHook,
    use_domain_visualization,
)


def _config(loader, val_loader=None):
    def dataset(step):
        return dict(type='CocoDataset', pipeline=[
            step, dict(type='Resize', scale=(8, 6), keep_ratio=True),
            dict(type='PackDetInputs')])
    return Config(dict(
        default_hooks=dict(visualization=dict(type='DetVisualizationHook')),
        val_dataloader=dict(dataset=dataset(val_loader or loader)),
        test_dataloader=dict(dataset=dataset(loader))))


def _write_12bit(path):
    """A 16-bit 40x30 PNG with 12-bit values (0..4080), and its 8-bit view."""
    image8 = np.zeros((30, 40, 3), np.uint8)
    image8[:, :, 0] = np.arange(40, dtype=np.uint8)[None] * 6
    image8[10:20, 10:30] = (200, 100, 50)
    cv2.imwrite(str(path), image8.astype(np.uint16) * 16)
    return image8


def _sample(path, num_boxes):
    sample = DetDataSample(metainfo=dict(img_path=str(path)))
    boxes = torch.tensor([[10., 10., 30., 20.]] * num_boxes).reshape(-1, 4)
    sample.pred_instances = InstanceData(
        bboxes=boxes, scores=torch.ones(num_boxes),
        labels=torch.zeros(num_boxes, dtype=torch.long))
    return sample


@pytest.fixture
def visualizer(request):
    # A new name each time: get_instance of an existing name would not make
    # it the current instance, which the hook draws with.
    vis = DetLocalVisualizer.get_instance(f'domain_vis_{id(request)}')
    vis.dataset_meta = dict(classes=('cell', ), palette=[(255, 0, 0)])
    return vis


@pytest.mark.parametrize('num_boxes', [1, 0])
def test_saved_drawing_is_windowed_like_the_loader(tmp_path, visualizer,
                                                   num_boxes):
    image8 = _write_12bit(tmp_path / 'a.png')
    loader = dict(type='LoadDomainImageFromFile', value_range=(0, 4080))
    runner = SimpleNamespace(cfg=_config(loader), work_dir=str(tmp_path),
                             timestamp='t', iter=0)
    drawn = {}
    for cls in (DomainDetVisualizationHook,
                DomainDetVisualizationHook.__mro__[1]):  # mmdet's hook
        hook = cls(draw=True, test_out_dir=cls.__name__)
        hook.before_run(runner)
        hook.before_test(runner)
        for _ in range(2):
            hook.after_test_iter(runner, 0, {},
                                 [_sample(tmp_path / 'a.png', num_boxes)])
        out = osp.join(str(tmp_path), 't', cls.__name__, 'a.png')
        drawn[cls.__name__] = cv2.imread(out)
    # mmdet's visualizer saves [ground truth | predictions] side by side;
    # with no ground truth its left half is the image as read.
    ours = drawn['DomainDetVisualizationHook']
    assert ours.shape == (30, 80, 3)
    np.testing.assert_allclose(ours[:, :40], image8, atol=1)
    np.testing.assert_allclose(ours[25:, 40:], image8[25:], atol=1)
    # mmdet's hook decodes the 16-bit file to 8 bits: 16 times darker.
    assert drawn['DetVisualizationHook'][:, :40].max() <= 240 // 16 + 1


def test_other_loaders_read_as_mmdet_does(tmp_path, visualizer):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)
    cv2.imwrite(str(tmp_path / 'b.png'), image)
    runner = SimpleNamespace(cfg=_config(dict(type='LoadImageFromFile')))
    hook = DomainDetVisualizationHook(draw=True)
    hook.before_run(runner)
    np.testing.assert_array_equal(hook.load(str(tmp_path / 'b.png')),
                                  image[..., ::-1])  # RGB, as mmdet's


def test_val_drawings_use_the_val_loader(tmp_path, visualizer):
    image8 = _write_12bit(tmp_path / 'a.png')
    (tmp_path / 'bad.png').write_bytes(b'not a png')
    val = dict(type='LoadDomainImageFromFile', color_type='grayscale',
               value_range=(0, 4080))
    test = dict(type='LoadDomainImageFromFile', value_range=(0, 8160))
    runner = SimpleNamespace(cfg=_config(test, val_loader=val), iter=3)
    hook = DomainDetVisualizationHook(draw=True, interval=3)
    hook.before_run(runner)
    calls = []
    visualizer.add_datasample = lambda name, img, **kw: calls.append(
        (img, kw['step']))
    try:
        for batch_idx in range(5):  # steps 3 to 7: 3 and 6 are drawn
            hook.after_val_iter(runner, batch_idx, {},
                                [_sample(tmp_path / 'a.png', 1)])
    finally:
        del visualizer.add_datasample
    assert [step for _, step in calls] == [3, 6]
    grey = cv2.cvtColor(image8, cv2.COLOR_BGR2GRAY)
    for img, _ in calls:  # the val window, grey repeated, not 8 bits
        assert img.shape == (30, 40, 3)
        assert np.abs(img[..., 0].astype(int) - grey).max() <= 2
    # The test window (0..8160) halves the intensities.
    test_img = hook.load(str(tmp_path / 'a.png'), 'test')
    np.testing.assert_allclose(test_img[..., ::-1], image8 / 2, atol=1)
    with pytest.raises(FileNotFoundError, match='bad.png'):
        hook.load(str(tmp_path / 'bad.png'))


def test_test_script_switches_only_for_the_domain_loader():
    cfg = _config(dict(type='LoadDomainImageFromFile'))
    assert use_domain_visualization(cfg)
    assert cfg.default_hooks.visualization.type == \
        'mmdet.DomainDetVisualizationHook'
    assert not use_domain_visualization(cfg)  # already switched
    for cfg in (_config(dict(type='LoadImageFromFile')),
                Config(dict(default_hooks=dict()))):
        assert not use_domain_visualization(cfg)
    cfg = _config(dict(type='LoadImageFromFile'))
    assert cfg.default_hooks.visualization.type == 'DetVisualizationHook'
    # A test set whose pipeline cannot be found is left to mmdet's hook.
    cfg = _config(dict(type='LoadImageFromFile'))
    cfg.test_dataloader.dataset = dict(type='CocoDataset')
    assert not use_domain_visualization(cfg)
    # Another visualization hook is kept, whatever the pipeline.
    cfg = _config(dict(type='LoadDomainImageFromFile'))
    cfg.default_hooks.visualization.type = 'MyVisualizationHook'
    assert not use_domain_visualization(cfg)
    cfg.test_dataloader.dataset = dict(type='CocoDataset')
    assert not use_domain_visualization(cfg)
    # A ConcatDataset with the domain loader in any of its datasets.
    cfg = _config(dict(type='LoadDomainImageFromFile'))
    domain = cfg.test_dataloader.dataset
    plain = dict(domain, pipeline=[dict(type='LoadImageFromFile')])
    cfg.test_dataloader.dataset = dict(type='ConcatDataset',
                                       datasets=[plain, domain])
    assert use_domain_visualization(cfg)


def test_pure_python_config_gets_a_buildable_hook():
    """Pure-Python configs name the loader and hook by class, and mmdet's
    pure-Python runtime sets ``default_scope = None``: a bare name would
    not be found in mmengine's root registry."""
    from mmdet.engine.hooks import DetVisualizationHook
    from mmengine.registry import HOOKS

    from rcnn_plugin.datasets.transforms import LoadDomainImageFromFile
    cfg = _config(dict(type=LoadDomainImageFromFile))
    cfg.default_hooks.visualization.type = DetVisualizationHook
    assert use_domain_visualization(cfg)
    assert cfg.default_hooks.visualization.type is DomainDetVisualizationHook
    assert isinstance(HOOKS.build(dict(cfg.default_hooks.visualization)),
                      DomainDetVisualizationHook)
    # A scoped string builds from the root registry too.
    cfg = _config(dict(type='LoadDomainImageFromFile'))
    use_domain_visualization(cfg)
    assert isinstance(HOOKS.build(dict(cfg.default_hooks.visualization)),
                      DomainDetVisualizationHook)
