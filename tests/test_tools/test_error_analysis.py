"""tools/analysis/error_analysis.py, run as a user runs it."""
import json
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch

from conftest import REPO, run_tool

TOOL = 'tools/analysis/error_analysis.py'


def _val_dataset(config):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from rcnn_plugin.datasets import update_inner_dataset_cfg
    register_all_modules()
    ds_cfg = Config.fromfile(config).val_dataloader.dataset
    return DATASETS.build(
        update_inner_dataset_cfg(ds_cfg, test_mode=True, pipeline=[]))


def _perfect_predictions(dataset, path):
    """The ground truth as predictions, dumped as tools/test.py does."""
    preds = []
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        inst = [i for i in info['instances'] if not i['ignore_flag']]
        preds.append(dict(
            img_id=info['img_id'], img_path=info['img_path'],
            pred_instances=dict(
                bboxes=torch.tensor([i['bbox'] for i in inst]).reshape(-1, 4),
                scores=torch.linspace(0.9, 0.5, len(inst)),
                labels=torch.tensor([i['bbox_label'] for i in inst]))))
    with open(path, 'wb') as f:
        pickle.dump(preds, f)
    return preds


def test_saved_perfect_predictions(tiny_config, tmp_path):
    dataset = _val_dataset(tiny_config)
    pred = str(tmp_path / 'preds.pkl')
    _perfect_predictions(dataset, pred)
    out_dir = tmp_path / 'out'
    out = run_tool([TOOL, tiny_config, '--pred', pred, '--split', 'val',
                    '--out-dir', str(out_dir), '--max-images', '2'])
    assert 'TIDE on 2 val images: mAP@0.5 1.000' in out
    report = json.load(open(out_dir / 'tide.json'))
    assert report['settings']['images'] == 2
    assert all(v == 0.0 for v in report['overall']['dAP'].values())
    assert set(report['per_class']) == set(dataset.metainfo['classes'])
    for name in ('per_class.csv', 'per_class.md', 'tide.png',
                 'gallery/index.json', 'gallery/index.md'):
        assert osp.isfile(out_dir / name), name
    assert not any(json.load(open(out_dir / 'gallery/index.json')).values())

    # Predictions of another dataset: a clear error.
    from rcnn_plugin.apis.error_analysis import attach_ground_truth
    with pytest.raises(ValueError, match='no prediction matches an image'):
        attach_ground_truth([dict(img_id=999, img_path='x.png',
                                  pred_instances=dict())], dataset)
    # Predictions of part of the split: the rest would count as misses.
    info = dataset.get_data_info(0)
    assert len(dataset) > 1
    with pytest.raises(ValueError, match=f'cover 1 of the {len(dataset)} '):
        attach_ground_truth([dict(img_id=info['img_id'],
                                  img_path=info['img_path'],
                                  pred_instances=dict())], dataset)


def test_predictions_are_joined_by_id_and_path(tiny_config, tmp_path):
    from rcnn_plugin.apis.error_analysis import attach_ground_truth
    dataset = _val_dataset(tiny_config)
    preds = _perfect_predictions(dataset, str(tmp_path / 'p.pkl'))
    samples = attach_ground_truth(preds, dataset)
    assert [s['img_path'] for s in samples] == [
        dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    # Two images sharing an id (two KITTI or YOLO folders): each gets its
    # own prediction, by path, not the last one of the id.
    same = [dict(p, img_id='000000') for p in preds]
    joined = attach_ground_truth(same, _SameIds(dataset))
    for pred, sample in zip(same, joined):
        assert sample['pred_instances'] is pred['pred_instances']
    with pytest.raises(ValueError, match='two predictions of one image'):
        attach_ground_truth(preds + preds[:1], dataset)
    # Another data root (same file names): joined by id. Another split
    # numbered from 1 as well (same ids, other files): not joined.
    moved = [dict(p, img_path='/elsewhere/' + osp.basename(p['img_path']))
             for p in preds]
    assert len(attach_ground_truth(moved, dataset)) == len(dataset)
    other_split = [dict(p, img_path=f'/test/other_{i}.png')
                   for i, p in enumerate(preds)]
    with pytest.raises(ValueError, match='no prediction matches an image'):
        attach_ground_truth(other_split, dataset)
    no_path = [{k: v for k, v in p.items() if k != 'img_path'}
               for p in preds]  # a hand-made dump: by id alone
    assert len(attach_ground_truth(no_path, dataset)) == len(dataset)
    # Predictions without img_id are found by their path.
    no_id = [{k: v for k, v in p.items() if k != 'img_id'} for p in preds]
    assert len(attach_ground_truth(no_id, dataset)) == len(dataset)
    # Labels of another class list are an error, not dropped from the APs.
    classes = len(dataset.metainfo['classes'])
    bad = [dict(p, pred_instances=dict(
        p['pred_instances'], labels=torch.full_like(
            p['pred_instances']['labels'], classes))) for p in preds]
    with pytest.raises(ValueError, match=f'labels up to {classes}, but the '
                       f'dataset has {classes} classes'):
        attach_ground_truth(bad, dataset)


class _SameIds:
    """A dataset whose images all have img_id '000000'."""

    def __init__(self, dataset):
        self.dataset, self.metainfo = dataset, dataset.metainfo

    def __len__(self):
        return len(self.dataset)

    def get_data_info(self, idx):
        return dict(self.dataset.get_data_info(idx), img_id='000000')


def test_wrapped_split_keeps_its_subset(tiny_config, tmp_path):
    # The RBC-only base model of a few-shot or incremental step is tested
    # on ClassSubsetDataset, which takes no test_mode / pipeline keys.
    config = tmp_path / 'rbc_only.py'
    config.write_text(
        f"_base_ = '{tiny_config}'\n"
        "val_dataloader = dict(dataset=dict(_delete_=True, "
        "type='ClassSubsetDataset', classes=('rbc', ), "
        "dataset={{_base_.val_dataloader.dataset}}))\n")
    dataset = _val_dataset(str(config))
    assert dataset.metainfo['classes'] == ('rbc', )
    pred = str(tmp_path / 'preds.pkl')
    _perfect_predictions(dataset, pred)
    out_dir = tmp_path / 'out'
    out = run_tool([TOOL, str(config), '--pred', pred, '--split', 'val',
                    '--out-dir', str(out_dir)])
    assert 'mAP@0.5 1.000' in out
    assert set(json.load(open(out_dir / 'tide.json'))['per_class']) == {
        'rbc'}
    # --max-images would cut the wrapped set by position: refused.
    proc = subprocess.run([sys.executable, TOOL, str(config), 'none.pth',
                           '--split', 'val', '--max-images', '2',
                           '--out-dir', str(tmp_path / 'cut')], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "needs a plain val dataset, got the wrapper 'ClassSubsetDataset'" \
        in proc.stderr


def test_needs_checkpoint_or_predictions(tiny_config):
    proc = subprocess.run([sys.executable, TOOL, tiny_config], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'give a CHECKPOINT' in proc.stderr


@pytest.mark.slow
def test_checkpoint_then_saved_predictions(tiny_config, tmp_path):
    work = str(tmp_path / 'work')
    run_tool(['tools/train.py', tiny_config, '--work-dir', work,
              '--cfg-options', 'train_cfg.val_interval=9'])
    ckpt = osp.join(work, 'epoch_1.pth')
    first = tmp_path / 'run'
    out = run_tool([TOOL, tiny_config, ckpt, '--split', 'val', '--out-dir',
                    str(first)])
    assert 'TIDE on 4 val images' in out and 'largest main error' in out
    report = json.load(open(first / 'tide.json'))
    counts = report['overall']['counts']
    assert sum(counts.values()) > 0  # a one-epoch model errs
    index = json.load(open(first / 'gallery/index.json'))
    entries = [e for items in index.values() for e in items]
    assert entries and all(e['type'] in ('Cls', 'Loc', 'Both', 'Bkg', 'Miss')
                           for e in entries)
    for entry in entries:
        assert osp.isfile(first / 'gallery' / entry['file'])
    # The dumped predictions give the same analysis without the model.
    second = tmp_path / 'pred'
    run_tool([TOOL, tiny_config, '--pred', str(first / 'val_predictions.pkl'),
              '--split', 'val', '--out-dir', str(second)])
    again = json.load(open(second / 'tide.json'))
    assert again['overall'] == report['overall']
