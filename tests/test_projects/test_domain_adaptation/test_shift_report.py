"""The shift report: image statistics, per-class AP and the whole tool."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from PIL import Image

from projects.DomainAdaptation.domain_adaptation.shift import (
    format_shift_report,
    image_stats,
    per_class_ap,
)

from conftest import REPO, shrink_model

TOOL = osp.join(REPO, 'projects', 'DomainAdaptation', 'tools',
                'shift_report.py')


def test_image_stats_golden(tmp_path):
    Image.new('RGB', (8, 4), (200, 100, 0)).save(tmp_path / 'a.png')
    Image.new('RGBA', (4, 4), (0, 100, 200, 10)).save(tmp_path / 'b.png')
    stats = image_stats([str(tmp_path / 'a.png'), str(tmp_path / 'b.png')])
    assert stats['sizes'] == {'8x4': 1, '4x4': 1}
    assert stats['modes'] == {'RGB': 1, 'RGBA': 1}
    assert stats['rgb_mean'] == pytest.approx([100, 100, 100])
    grey = (0.299 * 200 + 0.587 * 100 + 0.587 * 100 + 0.114 * 200) / 2
    assert stats['intensity_mean'] == pytest.approx(grey)
    with pytest.raises(ValueError, match='at least one image'):
        image_stats([])


class _Data:
    """Two 64x64 images; class 0 has boxes, class 1 none."""

    def __init__(self):
        from mmdet.structures import DetDataSample
        self.sample = DetDataSample(metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.)))

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return dict(inputs=torch.zeros(3, 64, 64, dtype=torch.uint8),
                    data_samples=self.sample.clone())

    def get_data_info(self, i):
        return dict(instances=[dict(bbox=[4, 4, 30, 30], bbox_label=0,
                                    ignore_flag=0)])


def test_per_class_ap_and_report_on_a_random_model():
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'bccd', 'faster-rcnn_'
                                   'mobilenetv2_fpn-128_8e_bccd.py'))
    model = MODELS.build(shrink_model(cfg.model))
    model.init_weights()
    rows = per_class_ap(model, _Data(), ['RBC', 'WBC', 'Platelets'])
    assert [r['num_gts'] for r in rows] == [2, 0, 0]
    assert rows[1]['ap'] is None and 0 <= rows[0]['ap'] <= 1
    stats = dict(num_images=1, sizes={'4x4': 1}, modes={'RGBA': 1},
                 intensity_mean=1.0, intensity_std=0.5, rgb_mean=[1, 2, 3])
    text = format_shift_report(stats, stats, rows)
    assert '| RBC | 2 |' in text and 'no boxes' in text
    assert 'over the 1 classes with boxes' in text


class _Fixed(torch.nn.Module):
    """A 'detector' that predicts one fixed class-0 box on every image."""

    def __init__(self, box):
        super().__init__()
        self.box = box

    def test_step(self, batch):
        from mmengine.structures import InstanceData
        sample = batch['data_samples'][0]
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([self.box]), scores=torch.tensor([0.9]),
            labels=torch.tensor([0]))
        return [sample]


class _SmallBox(_Data):
    def get_data_info(self, i):
        return dict(instances=[dict(bbox=[4, 4, 6, 6], bbox_label=0,
                                    ignore_flag=0)])


def test_per_class_ap_golden_and_voc_box_size():
    rows = per_class_ap(_Fixed([4., 4., 30., 30.]), _Data(), ['a', 'b'])
    assert rows[0]['ap'] == pytest.approx(1.0) and rows[0]['recall'] == 1
    rows = per_class_ap(_Fixed([40., 40., 60., 60.]), _Data(), ['a', 'b'])
    assert rows[0]['ap'] == 0 and rows[0]['num_dets'] == 2
    # IoU 0.45 with x2 - x1 box sizes, 0.62 with VOCMetric's x2 - x1 + 1:
    # the report matches tools/test.py (a hit), not eval_map's default
    small = _Fixed([4., 4., 5., 5.8])
    assert per_class_ap(small, _SmallBox(), ['a'])[0]['ap'] == \
        pytest.approx(1.0)
    assert per_class_ap(small, _SmallBox(), ['a'],
                        use_legacy_coordinate=False)[0]['ap'] == 0


def test_tool_arguments(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('shift_report', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    ckpt = str(tmp_path / 'ckpt.pth')
    open(ckpt, 'w').close()
    args = tool.parse_args(['cfg.py', ckpt, '--max-images', '5'])
    assert (args.config, args.max_images, args.out) == ('cfg.py', 5, None)
    # tracebacks before: init_detector's FileNotFoundError, range(-1)
    for argv, said in ((['cfg.py', 'missing.pth'], 'checkpoint file not'),
                       (['cfg.py', ckpt, '--max-images', '-1'], '>= 0')):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)
        assert said in capsys.readouterr().err
    # an adaptation config's training set mixes in the target images
    da = osp.join(REPO, 'projects', 'DomainAdaptation', 'configs',
                  'da-faster-rcnn_mobilenetv2_fpn-128_800i_bccd-to-bcd.py')
    with pytest.raises(SystemExit, match='give the source-only config'):
        tool.main([da, ckpt])
