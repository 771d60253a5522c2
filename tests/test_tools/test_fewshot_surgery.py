"""tools/model_converters/fewshot_surgery.py: rows, meta and bad input."""
import importlib.util
import os.path as osp

import pytest
import torch

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'model_converters', 'fewshot_surgery.py')
P = 'roi_head.bbox_head.'


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('fewshot_surgery', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def base_ckpt(tmp_path):
    torch.manual_seed(0)
    sd = {P + 'fc_cls.weight': torch.randn(2, 8),  # RBC, background
          P + 'fc_cls.bias': torch.randn(2),
          P + 'fc_reg.weight': torch.randn(4, 8),
          P + 'fc_reg.bias': torch.randn(4),
          'backbone.conv.weight': torch.randn(3, 3)}
    path = str(tmp_path / 'base.pth')
    torch.save({'meta': {'dataset_meta': {'classes': ('RBC', ),
                                          'palette': [(1, 2, 3)]}},
                'state_dict': sd}, path)
    return path, sd


def test_random_novel_rows_for_a_cosine_head(tool, base_ckpt, tmp_path):
    src, sd = base_ckpt
    dst = str(tmp_path / 'new_dir' / 'out.pth')
    assert tool.main([src, dst, '--classes', 'WBC', 'RBC', 'Platelets',
                      '--cosine', '--seed', '3']) == 0
    out = torch.load(dst, weights_only=True)
    new = out['state_dict']
    w = new[P + 'fc_cls.weight']
    assert w.shape == (4, 8)
    assert torch.equal(w[1], sd[P + 'fc_cls.weight'][0])  # RBC moved
    assert torch.equal(w[3], sd[P + 'fc_cls.weight'][1])  # background last
    assert 0 < w[[0, 2]].std() < 0.05  # mmdet init, std 0.01
    assert P + 'fc_cls.bias' not in new
    reg = new[P + 'fc_reg.weight'].view(3, 4, 8)
    assert torch.equal(reg[1], sd[P + 'fc_reg.weight'])
    assert torch.equal(new['backbone.conv.weight'],
                       sd['backbone.conv.weight'])
    meta = out['meta']
    assert meta['dataset_meta']['classes'] == ('WBC', 'RBC', 'Platelets')
    assert 'palette' not in meta['dataset_meta']
    assert meta['fewshot_surgery']['novel'] == ('WBC', 'Platelets')
    # Same seed, same rows; the plain head keeps its bias (0 for novel).
    dst2 = str(tmp_path / 'out2.pth')
    tool.main([src, dst2, '--classes', 'WBC', 'RBC', 'Platelets',
               '--seed', '3'])
    new2 = torch.load(dst2, weights_only=True)['state_dict']
    assert torch.equal(new2[P + 'fc_cls.weight'], w)
    assert new2[P + 'fc_cls.bias'][[0, 2]].abs().sum() == 0


@pytest.mark.parametrize('args,match', [
    (['--classes', 'WBC'], r"base classes \['RBC'\]"),
    (['--classes', 'RBC', 'WBC', '--init', 'prototype'], '--config'),
])
def test_bad_input(tool, base_ckpt, tmp_path, args, match):
    with pytest.raises(ValueError, match=match):
        tool.main([base_ckpt[0], str(tmp_path / 'x.pth')] + args)


def test_checkpoint_without_classes(tool, base_ckpt, tmp_path):
    bare = str(tmp_path / 'bare.pth')
    torch.save(base_ckpt[1], bare)
    with pytest.raises(ValueError, match='dataset_meta'):
        tool.main([bare, str(tmp_path / 'x.pth'), '--classes', 'A'])


def test_classes_out_of_the_training_sets_order_are_refused(
        tool, tmp_path, tiny_config, capsys):
    # --init random did not look at the fine-tuning set: rows written in
    # another order load (same shapes) under the wrong labels.
    torch.manual_seed(0)
    sd = {P + 'fc_cls.weight': torch.randn(2, 8),
          P + 'fc_cls.bias': torch.randn(2),
          P + 'fc_reg.weight': torch.randn(4, 8),
          P + 'fc_reg.bias': torch.randn(4)}
    src = str(tmp_path / 'rbc.pth')
    torch.save({'meta': {'dataset_meta': {'classes': ('rbc', )}},
                'state_dict': sd}, src)
    dst = str(tmp_path / 'out.pth')
    with pytest.raises(ValueError, match="training set's order"):
        tool.main([src, dst, '--classes', 'wbc', 'rbc', 'platelet',
                   '--config', tiny_config])
    assert tool.main([src, dst, '--classes', 'rbc', 'wbc', 'platelet',
                      '--config', tiny_config]) == 0
    tool.main([src, dst, '--classes', 'wbc', 'rbc', 'platelet'])
    assert "in the fine-tuning set's order (give --config" in \
        capsys.readouterr().out
