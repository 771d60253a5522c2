"""tools/analysis/run_fewshot_benchmark.py: commands and AP50 scoring."""
import importlib.util
import os.path as osp
import pickle
import subprocess

import numpy as np
import pytest

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'analysis', 'run_fewshot_benchmark.py')
DEMO = osp.join(REPO, 'configs', 'demo',
                'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('bench', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_prints_the_grid(tool, capsys):
    assert tool.main(['fewshot', '--work-dir', 'w', '--shots', '1', '5',
                      '--seeds', '0', '1', '--dry-run']) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if x.startswith('$')]
    # base train + test, 2 surgeries, 2 methods x 2 K x 2 seeds x 2 steps.
    assert len(lines) == 2 + 2 + 16
    assert 'train_dataloader.dataset.seed=1' in out
    assert 'cos_fine-tuning_5shot_bccd.py' in out
    assert 'full_5shot_seed1/iter_320.pth' in out
    # Fine-tuning runs skip the val pass (scored on test); base training
    # keeps the config's.
    trains = [x for x in lines if x.split()[1] == 'tools/train.py']
    assert 'val_cfg=None' not in trains[0]
    assert all('val_cfg=None' in x and 'val_dataloader=None' in x
               and 'val_evaluator=None' in x for x in trains[1:])
    for line in lines:
        script = line.split()[1]
        assert osp.isfile(osp.join(REPO, script)), script
        cfg = line.split()[2]
        if cfg.startswith('configs/'):
            assert osp.isfile(osp.join(REPO, cfg)), cfg


def test_summary_mean_and_std(tool):
    table = tool.summarize({'a': [dict(x=0.5), dict(x=0.7)]}, ['x', 'y'],
                           't')
    assert '| a | 2 | 60.0 +- 14.1 | - |' in table
    one = tool.summarize({'b': [dict(x=0.5)]}, ['x'], 't')
    assert '| b | 1 | 50.0 |' in one  # no '+- 0.0' for a single run


def _demo_test_set(tmp_path, synthetic_cells):
    """The demo config on the synthetic cells: (its path, test dataset)."""
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = '{DEMO}'\n"
                   f"test_dataloader = dict(dataset=dict("
                   f"data_root='{synthetic_cells}/'))\n")
    init_default_scope('mmdet')
    return cfg, DATASETS.build(
        Config.fromfile(str(cfg)).test_dataloader.dataset)


def test_ap50_of_perfect_and_of_missing_predictions(tool, tmp_path,
                                                    synthetic_cells):
    cfg, ds = _demo_test_set(tmp_path, synthetic_cells)
    preds = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        boxes = np.array([x['bbox'] for x in info['instances']],
                         dtype=np.float32).reshape(-1, 4)
        labels = np.array([x['bbox_label'] for x in info['instances']])
        keep = labels != 1  # no wbc predictions at all
        preds.append(dict(img_path=info['img_path'], pred_instances=dict(
            bboxes=boxes[keep], scores=np.ones(keep.sum()),
            labels=labels[keep])))
    pkl = tmp_path / 'preds.pkl'
    pkl.write_bytes(pickle.dumps(preds))
    ap = tool.per_class_ap50(str(cfg), str(pkl))
    assert ap == dict(rbc=1.0, wbc=0.0, platelet=1.0)
    pkl.write_bytes(pickle.dumps(preds[:-1]))
    with pytest.raises(ValueError, match='predictions for'):
        tool.per_class_ap50(str(cfg), str(pkl))


def test_ap50_is_voc_metrics(tool, tmp_path, synthetic_cells):
    """Jittered boxes near IoU 0.5: the per-class AP50 averages to what
    mmdet's VOCMetric (area mode, legacy +1 box size) reports."""
    import torch
    from mmdet.evaluation import VOCMetric
    cfg, ds = _demo_test_set(tmp_path, synthetic_cells)
    rng = np.random.default_rng(0)
    metric = VOCMetric(metric='mAP', eval_mode='area')
    metric.dataset_meta = ds.metainfo
    preds, samples = [], []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        boxes = np.array([x['bbox'] for x in info['instances']],
                         dtype=np.float32).reshape(-1, 4)
        labels = np.array([x['bbox_label'] for x in info['instances']])
        shrunk = boxes.copy()  # keep 40 to 60 % of the width
        shrunk[:, 2] = boxes[:, 0] + (boxes[:, 2] - boxes[:, 0]) * \
            rng.uniform(0.4, 0.6, len(boxes))
        scores = rng.uniform(0.1, 1.0, len(boxes))
        preds.append(dict(img_path=info['img_path'], pred_instances=dict(
            bboxes=shrunk, scores=scores, labels=labels)))
        samples.append(dict(
            gt_instances=dict(bboxes=torch.from_numpy(boxes),
                              labels=torch.from_numpy(labels)),
            ignored_instances=dict(bboxes=torch.zeros(0, 4),
                                   labels=torch.zeros(0, dtype=torch.long)),
            pred_instances=dict(bboxes=torch.from_numpy(shrunk),
                                scores=torch.from_numpy(scores),
                                labels=torch.from_numpy(labels))))
    metric.process({}, samples)
    expected = metric.compute_metrics(metric.results)['mAP']
    pkl = tmp_path / 'preds.pkl'
    pkl.write_bytes(pickle.dumps(preds))
    ap = tool.per_class_ap50(str(cfg), str(pkl))
    assert 0.05 < expected < 0.95  # the jitter straddles IoU 0.5
    assert np.mean(list(ap.values())) == pytest.approx(expected, abs=1e-6)


def test_few_label_dry_run_writes_each_runs_config(tool, tmp_path, capsys):
    work = str(tmp_path / 'w')
    assert tool.main(['few-label', '--work-dir', work, '--fractions', '0.1',
                      '--seeds', '0', '1', '--dry-run']) == 0
    lines = [x for x in capsys.readouterr().out.splitlines()
             if x.startswith('$')]
    # 2 configs x 1 fraction x 2 seeds, each trained and tested.
    assert len(lines) == 8
    lora = 'faster-rcnn_mobilenetv2_fpn-128_lora-r4-fpn_8e_bccd_10pct_seed1'
    assert any(f'{lora}/few_label.py' in x and 'randomness.seed=1' in x
               and 'val_cfg=None' in x for x in lines)
    assert any(f'{lora}/epoch_8.pth' in x for x in lines)
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(work, lora, 'few_label.py'))
    wrapper = cfg.train_dataloader.dataset
    assert wrapper.type == 'RepeatDataset' and wrapper.times == 10
    assert wrapper.dataset.type == 'SeededSplitDataset'
    assert wrapper.dataset.seed == 1 and wrapper.dataset.fraction == 0.1
    # Full fine-tuning and LoRA train on the same data: one drawn split.
    full = Config.fromfile(osp.join(work, lora.replace('_lora-r4-fpn', ''),
                                    'few_label.py'))
    split_dir = wrapper.dataset.split_dir
    assert split_dir.startswith(osp.join(work, 'splits', '10pct_seed1_'))
    assert full.train_dataloader.dataset.dataset.split_dir == split_dir
    assert wrapper.dataset.dataset.type == 'BCCDDataset'
    assert cfg.model.lora.rank == 4  # the PEFT config, not a copy of full
    assert 'rcnn_plugin' in cfg.custom_imports.imports


def test_few_label_config_draws_a_seeded_share(tool, tmp_path,
                                                synthetic_cells):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = '{DEMO}'\n"
                   f"train_dataloader = dict(dataset=dict("
                   f"data_root='{synthetic_cells}/'))\n")
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')

    def images(seed, name):
        out = str(tmp_path / name / 'few_label.py')
        last = tool.few_label_config(str(cfg), 0.25, seed,
                                     str(tmp_path / f'split_{name}'), out)
        assert last == 'epoch_4.pth'
        ds = DATASETS.build(Config.fromfile(out).train_dataloader.dataset)
        drawn = ds.dataset
        assert len(ds) == 4 * len(drawn)  # times = round(1 / 0.25)
        return [drawn.get_data_info(i)['img_path']
                for i in range(len(drawn))], len(drawn.source)

    first, total = images(0, 'a')
    assert 0 < len(first) < total
    assert abs(len(first) - 0.25 * total) <= 3  # stratified rounding
    assert images(0, 'b')[0] == first  # same seed, a fresh draw: same
    assert images(1, 'c')[0] != first
    with pytest.raises(ValueError, match='in \\(0, 1\\)'):
        tool.few_label_config(str(cfg), 1.0, 0, str(tmp_path / 's'),
                              str(tmp_path / 'x.py'))
    with pytest.raises(SystemExit):  # before any training starts
        tool.main(['few-label', '--work-dir', str(tmp_path / 'w'),
                   '--fractions', '0.1', '1.5', '--dry-run'])


def test_few_label_config_of_a_wrapped_training_set(tool, tmp_path,
                                                    synthetic_cells):
    # E.g. an RBC-only base training: SeededSplitDataset draws from the
    # ClassSubsetDataset (built without its pipeline), then trains on it.
    plain = tmp_path / 'plain.py'
    plain.write_text(f"_base_ = '{DEMO}'\n"
                     f"train_dataloader = dict(dataset=dict("
                     f"data_root='{synthetic_cells}/'))\n")
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = '{plain}'\n"
                   "train_dataloader = dict(dataset=dict(_delete_=True, "
                   "type='ClassSubsetDataset', classes=('rbc', ), "
                   "dataset={{_base_.train_dataloader.dataset}}))\n")
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    out = str(tmp_path / 'run' / 'few_label.py')
    tool.few_label_config(str(cfg), 0.5, 0, str(tmp_path / 'splits'), out)
    ds = DATASETS.build(Config.fromfile(out).train_dataloader.dataset)
    assert ds.metainfo['classes'] == ('rbc', )
    assert 0 < len(ds.dataset) < len(ds.dataset.source)
    packed = ds[0]  # the pipeline ran on a drawn image
    assert packed['inputs'].ndim == 3
    assert set(packed['data_samples'].gt_instances.labels.tolist()) <= {0}


def test_a_finished_run_is_reused_only_for_the_same_config(tool, tmp_path,
                                                           monkeypatch):
    """A second start reuses ap50.json; a changed --cfg-options stops the
    driver instead of reporting the old run's numbers."""
    commands = []
    monkeypatch.setattr(tool, 'run', lambda cmd, dry: commands.append(cmd))
    (tmp_path / 'run').mkdir()  # tools/train.py would make it
    monkeypatch.setattr(tool, 'per_class_ap50',
                        lambda config, preds: dict(RBC=0.5))
    work = str(tmp_path / 'run')
    opts = ['randomness.seed=0']
    assert tool.train_and_test(DEMO, work, opts, 'epoch_4.pth', False) == \
        dict(RBC=0.5)
    assert len(commands) == 2  # train, test
    assert tool.train_and_test(DEMO, work, opts, 'epoch_4.pth', False) == \
        dict(RBC=0.5)
    assert len(commands) == 2  # reused
    with pytest.raises(SystemExit, match='another config'):
        tool.train_and_test(DEMO, work, ['randomness.seed=1'], 'epoch_4.pth',
                            False)
    assert len(commands) == 2


def test_a_cut_run_resumes_only_if_started_from_the_same(tool, tmp_path,
                                                         monkeypatch):
    """A run cut after a checkpoint (no ap50.json) resumes; one that was
    started from other options is refused (resuming it would mix both)."""
    commands = []

    def fake_run(cmd, dry):
        commands.append(cmd)
        if cmd[0] == 'tools/test.py':
            raise subprocess.CalledProcessError(1, cmd)  # cut in the test

    monkeypatch.setattr(tool, 'run', fake_run)
    work = tmp_path / 'run'
    work.mkdir()
    opts = ['randomness.seed=0']
    with pytest.raises(subprocess.CalledProcessError):
        tool.train_and_test(DEMO, str(work), opts, 'epoch_4.pth', False)
    assert '--resume' not in commands[0]  # nothing to resume yet
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    with pytest.raises(subprocess.CalledProcessError):
        tool.train_and_test(DEMO, str(work), opts, 'epoch_4.pth', False)
    assert commands[2][-1] == '--resume'
    with pytest.raises(SystemExit, match='begun from another config'):
        tool.train_and_test(DEMO, str(work), ['randomness.seed=1'],
                            'epoch_4.pth', False)  # other options
    assert len(commands) == 4  # refused before training


def test_surgery_is_remade_only_for_the_same_base(tool, tmp_path,
                                                  monkeypatch):
    made = []

    def fake_run(cmd, dry):
        made.append(cmd)
        open(cmd[2], 'wb').write(b'surgery')
    monkeypatch.setattr(tool, 'run', fake_run)
    base, out = str(tmp_path / 'base.pth'), str(tmp_path / 'surgery.pth')
    open(base, 'wb').write(b'base one')
    tool.surgery_cmd(base, out, ['--cosine'], [], False)
    tool.surgery_cmd(base, out, ['--cosine'], [], False)
    assert len(made) == 1
    open(base, 'wb').write(b'base two')  # the base model was retrained
    with pytest.raises(SystemExit, match='delete it'):
        tool.surgery_cmd(base, out, ['--cosine'], [], False)


def test_prototype_surgery_follows_its_config(tool, tmp_path, monkeypatch):
    """Prototype rows are computed through a config: a changed config
    (same path, same command) must not reuse the old surgery."""
    monkeypatch.setattr(
        tool, 'run', lambda cmd, dry: open(cmd[2], 'wb').write(b'rows'))
    base, out = str(tmp_path / 'base.pth'), str(tmp_path / 'surgery.pth')
    open(base, 'wb').write(b'base')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = '{DEMO}'\n")
    flags = ['--cosine', '--init', 'prototype', '--config', str(cfg)]
    tool.surgery_cmd(base, out, flags, [], False)
    tool.surgery_cmd(base, out, flags, [], False)  # reused
    cfg.write_text(f"_base_ = '{DEMO}'\nrandomness = dict(seed=5)\n")
    with pytest.raises(SystemExit, match='delete it'):
        tool.surgery_cmd(base, out, flags, [], False)
