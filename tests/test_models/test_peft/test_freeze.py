"""Freezing policies, frozen BN statistics and the parameter table."""
import os
import re
from unittest import mock

import pytest
import torch
from mmengine.logging import MMLogger
from peft_tiny_net import TinyNet

from rcnn_plugin.models.peft import (
    apply_freeze,
    inject_lora,
    parameter_table,
    select_modules,
    unfreeze_norm_stats,
)

# TinyNet parameters, by hand:
# backbone.0: conv 3*8*9 = 216 (no bias, ConvModule+BN), BN 8 + 8 = 16
# backbone.1: conv 8*4*9 = 288 weight + 8 bias = 296
# bbox_head: shared_fcs.0 8*16 + 16 = 144, fc_cls 16*3 + 3 = 51
BACKBONE, HEAD = 216 + 16 + 296, 144 + 51


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_named_group_suffix_and_regex_selection():
    model = TinyNet()
    assert select_modules(model, 'fc_cls') == ['bbox_head.fc_cls']
    assert select_modules(model, 'bbox_head.fc_cls') == ['bbox_head.fc_cls']
    assert select_modules(model, r'backbone\.[01]') == [
        'backbone.0', 'backbone.1']
    assert '' in select_modules(model, '.*')  # the whole model


def test_frozen_then_trainable():
    model = TinyNet()
    apply_freeze(model, frozen='.*', trainable=['bbox_head.fc_cls'])
    assert _trainable(model) == {'bbox_head.fc_cls.weight',
                                 'bbox_head.fc_cls.bias'}


def test_freeze_pattern_matching_nothing_lists_close_names():
    with pytest.raises(ValueError) as err:
        apply_freeze(TinyNet(), frozen=['backbone', 'bbox_head.fc_clss'])
    assert "freeze.frozen='bbox_head.fc_clss'" in str(err.value)
    assert 'bbox_head.fc_cls' in str(err.value)


def test_frozen_bn_stays_in_eval_after_train():
    torch.manual_seed(0)
    model = TinyNet()
    apply_freeze(model, frozen='backbone')
    bn = model.backbone[0].bn
    stats = bn.running_mean.clone(), bn.running_var.clone()
    model.train()
    assert model.training and model.bbox_head.training
    assert not bn.training
    model(torch.randn(4, 3, 8, 8) * 5 + 3)
    assert torch.equal(bn.running_mean, stats[0])
    assert torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == 0
    assert isinstance(bn, torch.nn.BatchNorm2d)
    assert list(bn.state_dict()) == [
        'weight', 'bias', 'running_mean', 'running_var',
        'num_batches_tracked']
    unfreeze_norm_stats(model)
    assert type(bn) is torch.nn.BatchNorm2d


def test_a_model_with_frozen_bn_stats_pickles_into_a_fresh_process(
        tmp_path):
    """torch.save of the whole model loads where the frozen subclass was
    never made, and its BN layer stays frozen; deepcopy (EMA) too."""
    import copy
    import subprocess
    import sys
    model = TinyNet()
    apply_freeze(model, frozen='backbone')
    path = tmp_path / 'model.pt'
    torch.save(model, path)
    code = (
        'import sys, torch\n'
        f'sys.path.insert(0, {os.path.dirname(__file__)!r})\n'
        f'm = torch.load({str(path)!r}, weights_only=False)\n'
        'bn = m.backbone[0].bn\n'
        'm.train()\n'
        'print(type(bn).__name__, bn.training, type(bn).__mro__[1].__name__)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ['FrozenStatsBatchNorm2d', 'False',
                                  'BatchNorm2d']
    twin = copy.deepcopy(model)
    twin.train()
    assert not twin.backbone[0].bn.training
    assert torch.equal(twin.backbone[0].bn.running_mean,
                       model.backbone[0].bn.running_mean)


def test_bn_layers_replaced_by_sync_bn_are_frozen_again():
    """mmengine's sync_bn builds plain SyncBatchNorm layers after the
    model is built; the next forward freezes them again, and says so."""
    from mmengine.model import convert_sync_batchnorm

    from rcnn_plugin.models.peft import refreeze_norm_stats
    model = TinyNet()
    apply_freeze(model, frozen='backbone')
    assert refreeze_norm_stats(model) == []  # nothing replaced yet
    model = convert_sync_batchnorm(model)
    bn = model.backbone[0].bn
    assert type(bn) is torch.nn.SyncBatchNorm
    model.train()
    assert bn.training  # its statistics would update
    stats = bn.running_mean.clone()
    with mock.patch.object(MMLogger, 'get_current_instance') as logger:
        model(torch.randn(4, 3, 8, 8) * 5 + 3)
    assert 'frozen again' in logger.return_value.warning.call_args[0][0]
    assert not bn.training and isinstance(bn, torch.nn.SyncBatchNorm)
    assert torch.equal(bn.running_mean, stats)
    model.train()
    assert not bn.training
    unfreeze_norm_stats(model)
    assert refreeze_norm_stats(model) == []


def test_trainable_bn_still_updates():
    model = TinyNet()
    apply_freeze(model, frozen='bbox_head')
    model.train()
    model(torch.randn(4, 3, 8, 8) * 5 + 3)
    assert model.backbone[0].bn.training
    assert int(model.backbone[0].bn.num_batches_tracked) == 1


def _row(table, name):
    line = next(ln for ln in table.splitlines() if ln.startswith(name + ' '))
    cells = line.split()
    return [int(c.replace(',', '')) for c in cells[1:5]] + [float(cells[5])]


def test_parameter_table_counts():
    model = TinyNet()
    inject_lora(model, r'bbox_head\.shared_fcs\.0', rank=2)  # 2*8 + 16*2
    apply_freeze(model, frozen='.*', trainable='fc_cls')
    table = parameter_table(model)
    assert re.match(r'module +params +trainable +frozen +lora +train %',
                    table)
    lora = 2 * 8 + 16 * 2
    assert _row(table, 'backbone') == [BACKBONE, 0, BACKBONE, 0, 0.0]
    head = _row(table, 'bbox_head')
    assert head[:4] == [HEAD + lora, 51 + lora, 144, lora]
    total = _row(table, 'total')
    assert total[:4] == [BACKBONE + HEAD + lora, 51 + lora,
                         BACKBONE + 144, lora]
    assert total[4] == pytest.approx(
        100 * (51 + lora) / (BACKBONE + HEAD + lora), abs=0.01)


def test_parameter_table_counts_conv_adapters_in_their_row():
    from rcnn_plugin.models.peft import inject_conv_adapters
    model = TinyNet()
    inject_conv_adapters(model, r'backbone\.0')
    table = parameter_table(model)
    row = _row(table, 'conv_adapters')
    assert row[0] > 0 and row[3] == row[0]  # every one of them an adapter
    assert _row(table, 'total')[3] == row[0]  # the rows add up


def test_apply_freeze_logs_the_table(caplog, monkeypatch):
    import logging

    from mmengine.logging import MMLogger
    logger = logging.getLogger('test_peft_table')
    monkeypatch.setattr(MMLogger, 'get_current_instance',
                        classmethod(lambda cls: logger))
    with caplog.at_level('INFO', logger='test_peft_table'):
        apply_freeze(TinyNet(), frozen='backbone')
    assert 'Trainable and frozen parameters' in caplog.text
    assert re.search(r'bbox_head +195 +195 +0 +0 +100\.00', caplog.text)
