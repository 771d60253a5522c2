"""The sweep's pieces that need no model: pipelines, store, config."""
import json

import pytest
from mmengine.config import Config

from rcnn_plugin.apis.robustness import (
    ConditionStore,
    FirstImages,
    StaleResultsError,
    corrupted_dataset_cfg,
    prepare_config,
    run_fingerprint,
    run_sweep,
)

LOAD = dict(type='LoadImageFromFile')
PIPE = [LOAD, dict(type='Resize', scale=(64, 64)),
        dict(type='PackDetInputs')]


def _types(pipeline):
    return [t['type'] for t in pipeline]


def test_plain_dataset_gets_the_step_after_loading():
    cfg = dict(type='CocoDataset', pipeline=PIPE)
    out = corrupted_dataset_cfg(cfg, 'fog', 3, seed=7)
    assert _types(out['pipeline']) == [
        'LoadImageFromFile', 'SeededCorrupt', 'Resize', 'PackDetInputs']
    assert out['pipeline'][1] == dict(type='SeededCorrupt', corruption='fog',
                                      severity=3, seed=7)
    assert _types(cfg['pipeline']) == _types(PIPE)  # input untouched


def test_loading_not_first_and_clean_is_unchanged():
    pipe = [dict(type='Resize'), dict(type='mmdet.LoadImageFromFile')]
    out = corrupted_dataset_cfg(dict(pipeline=pipe), 'fog', 1, seed=0)
    assert _types(out['pipeline'])[-1] == 'SeededCorrupt'
    assert corrupted_dataset_cfg(dict(pipeline=pipe), None, 0, 0) == dict(
        pipeline=pipe)


@pytest.mark.parametrize('wrapper', ['ClassSubsetDataset',
                                     'ImageSubsetDataset', 'RepeatDataset'])
def test_wrappers_pipeline_is_inside(wrapper):
    cfg = dict(type=wrapper, dataset=dict(type='CocoDataset', pipeline=PIPE))
    out = corrupted_dataset_cfg(cfg, 'snow', 2, seed=0)
    assert 'pipeline' not in out
    assert _types(out['dataset']['pipeline'])[1] == 'SeededCorrupt'


def test_concat_dataset_every_part():
    cfg = dict(type='ConcatDataset', datasets=[
        dict(type='CocoDataset', pipeline=PIPE),
        dict(type='ClassSubsetDataset',
             dataset=dict(type='CocoDataset', pipeline=PIPE))])
    out = corrupted_dataset_cfg(cfg, 'fog', 1, seed=0)
    assert _types(out['datasets'][0]['pipeline'])[1] == 'SeededCorrupt'
    assert _types(out['datasets'][1]['dataset']['pipeline'])[1] == \
        'SeededCorrupt'


def test_pipeline_without_loading_is_named():
    cfg = dict(type='ClassSubsetDataset', dataset=dict(
        type='CocoDataset', pipeline=[dict(type='Resize')]))
    with pytest.raises(ValueError, match=r'test_dataloader\.dataset\.dataset'
                       r'\.pipeline has no image-loading step'):
        corrupted_dataset_cfg(cfg, 'fog', 1, seed=0)
    with pytest.raises(ValueError, match='val.dataset has no pipeline'):
        corrupted_dataset_cfg(dict(type='X'), 'fog', 1, 0, where='val.dataset')


def _cfg():
    return Config(dict(
        model=dict(type='FasterRCNN'),
        val_dataloader=dict(dataset=dict(type='A', pipeline=PIPE)),
        val_evaluator=dict(type='VOCMetric'),
        test_dataloader=dict(dataset=dict(type='B', pipeline=PIPE)),
        test_evaluator=dict(type='CocoMetric')))


def test_prepare_config_splits(tmp_path):
    cfg = prepare_config(_cfg(), 'ck.pth', 'val', str(tmp_path))
    assert cfg.test_dataloader.dataset.type == 'A'
    assert cfg.test_evaluator.type == 'VOCMetric'
    assert cfg.load_from == 'ck.pth' and cfg.test_cfg.type == 'TestLoop'
    cfg = prepare_config(_cfg(), 'ck.pth', 'test', str(tmp_path))
    assert cfg.test_dataloader.dataset.type == 'B'
    bare = _cfg()
    bare.pop('val_evaluator')
    with pytest.raises(ValueError, match='no val_evaluator'):
        prepare_config(bare, 'ck.pth', 'val', str(tmp_path))


def test_fingerprint_tells_runs_apart(tmp_path):
    ckpt = tmp_path / 'a.pth'
    ckpt.write_bytes(b'weights')
    cfg = prepare_config(_cfg(), str(ckpt), 'test', str(tmp_path))
    base = run_fingerprint(cfg, str(ckpt), 0, None, True)
    assert base == run_fingerprint(cfg, str(ckpt), 0, None, True)
    assert base != run_fingerprint(cfg, str(ckpt), 1, None, True)
    other = prepare_config(_cfg(), str(ckpt), 'val', str(tmp_path))
    assert base['config_sha256'] != run_fingerprint(
        other, str(ckpt), 0, None, True)['config_sha256']
    ckpt.write_bytes(b'other weights')
    assert base['checkpoint_sha256'] != run_fingerprint(
        cfg, str(ckpt), 0, None, True)['checkpoint_sha256']
    # conditions drawn with the whole path as key (before 2026-12-07)
    old = {k: v for k, v in base.items() if k != 'draws_keyed_by'}
    ConditionStore(str(tmp_path / 'out'), old, {})
    with pytest.raises(StaleResultsError, match='differs in draws_keyed_by'):
        ConditionStore(str(tmp_path / 'out'), base, {})


def test_store_saves_loads_and_refuses_another_run(tmp_path):
    out = str(tmp_path / 'out')
    store = ConditionStore(out, dict(seed=0, config_sha256='x'), dict(c=1))
    assert store.load('fog_s1') is None
    store.save('fog_s1', {'m': 0.5}, 1.0)
    again = ConditionStore(out, dict(seed=0, config_sha256='x'), dict(c=1))
    assert again.load('fog_s1') == {'m': 0.5}
    with pytest.raises(StaleResultsError, match='differs in seed'):
        ConditionStore(out, dict(seed=1, config_sha256='x'), dict(c=1))
    # a condition file of another run is not reused
    saved = json.load(open(store.path('fog_s1')))
    saved['fingerprint'] = dict(seed=5)
    json.dump(saved, open(store.path('fog_s1'), 'w'))
    assert again.load('fog_s1') is None


def test_first_images():
    class Data:
        metainfo = dict(classes=('a', ))

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return i

    head = FirstImages(Data(), 2)
    assert len(head) == 2 and head[1] == 1 and head.metainfo['classes']
    with pytest.raises(IndexError):
        head[2]
    assert len(FirstImages(Data(), 9)) == 5
    with pytest.raises(ValueError, match='>= 1'):
        FirstImages(Data(), 0)


def test_a_condition_without_metrics_does_not_stop_the_sweep(tmp_path):
    # mmdet's CocoMetric returns {} when nothing is detected: the log line
    # asked main_metric for a key and the sweep ended there ("returned no
    # numeric metric", reported by the tool as another config's checkpoint).
    class Sweep:
        def run(self, corruption, severity):
            return {} if corruption == 'fog' else {'coco/bbox_mAP': 0.5}

        def classes(self):
            return ['a']

    store = ConditionStore(str(tmp_path), dict(seed=0), dict(c=1))
    lines = []
    results = run_sweep(Sweep(), store,
                        [(None, 0), ('fog', 5), ('frost', 5)], lines.append)
    assert results == {'clean': {'coco/bbox_mAP': 0.5}, 'fog_s5': {},
                       'frost_s5': {'coco/bbox_mAP': 0.5}}
    assert 'fog_s5: no metric' in lines[1]
    assert 'frost_s5: coco/bbox_mAP 0.5000' in lines[2]
